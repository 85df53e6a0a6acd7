use axum::http::StatusCode;

use super::validate_url;

#[test]
fn webhook_and_repository_urls_are_http_or_https() {
    for good in [
        "http://127.0.0.1:8080/hook",
        "https://hooks.example.com/x?y=1",
        "https://charts.example.com/stable",
    ] {
        assert!(validate_url(good).is_ok(), "{good}");
    }
    for (bad, says) in [
        ("ftp://example.com/", "must be http:// or https://"),
        ("file:///etc/passwd", "must be http:// or https://"),
        ("not a url", "is not a URL"),
        ("hooks.example.com", "is not a URL"),
    ] {
        let error = validate_url(bad).unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(error.message.contains(says), "{bad}: {}", error.message);
    }
}
