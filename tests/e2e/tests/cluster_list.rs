//! `GET /api/v1/clusters` filtered and in pages, and `GET /api/v1/cluster-counts`: what the
//! console's cluster list and overview read, so that neither moves every cluster's state at
//! thousands of clusters.

use kube_sim::KubeSim;
use portico_e2e::gateway::TestGateway;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn get(gw: &TestGateway, token: &str, path: &str) -> (StatusCode, Value) {
    let response = gw.as_token(token, Method::GET, path).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

fn ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn register(gw: &TestGateway, id: &str, kubeconfig: &str, labels: Value) {
    let response = gw
        .as_admin(Method::POST, "/api/v1/clusters")
        .json(&json!({"id": id, "name": format!("Cluster {}", id.to_uppercase()), "kubeconfig": kubeconfig, "labels": labels}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "register {id}");
}

/// Every page of `query` (`limit` per page), followed by `continue`, with the `total` each
/// page reported.
async fn pages(
    gw: &TestGateway,
    token: &str,
    query: &str,
    limit: usize,
) -> Vec<(Vec<String>, u64)> {
    let mut out = Vec::new();
    let mut after = String::new();
    for _ in 0..20 {
        let (status, page) = get(
            gw,
            token,
            &format!("/api/v1/clusters?limit={limit}{query}{after}"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        out.push((ids(&page), page["total"].as_u64().unwrap()));
        match page.get("continue").and_then(Value::as_str) {
            Some(next) => after = format!("&continue={next}"),
            None => return out,
        }
    }
    panic!("more than 20 pages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_filter_and_page_and_counts_follow_grants() -> anyhow::Result<()> {
    let gw = TestGateway::builder().start().await;
    let admin = gw.admin_token.clone().unwrap();
    let sim = KubeSim::start().await?;
    // A server that is gone: its connect fails.
    let gone = KubeSim::start().await?.kubeconfig();

    for (id, team) in [("a-1", "web"), ("a-2", "web"), ("b-1", "db"), ("b-2", "db")] {
        register(&gw, id, &sim.kubeconfig(), json!({"team": team})).await;
    }
    register(&gw, "c-1", &gone, json!({"team": "Payments"})).await;
    register(&gw, "c-2", &sim.kubeconfig(), json!({})).await;
    for id in ["a-1", "b-1", "c-1"] {
        gw.as_admin(Method::POST, &format!("/api/v1/clusters/{id}/connect"))
            .send()
            .await?;
    }
    // Bounded wait for the failing connect to settle as `failed`.
    let mut failed = false;
    for _ in 0..200 {
        let (_, c) = get(&gw, &admin, "/api/v1/clusters/c-1").await;
        if c["state"] == "failed" {
            failed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(failed, "c-1 never showed as failed");

    // Without parameters: the whole list, by id, with the total and no `continue`.
    let (status, all) = get(&gw, &admin, "/api/v1/clusters").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&all), ["a-1", "a-2", "b-1", "b-2", "c-1", "c-2"]);
    assert_eq!(all["total"], 6);
    assert!(all.get("continue").is_none(), "{all}");

    // Pages of two: the same clusters in the same order, the same total on every page, and
    // each item as the whole list shows it (this replica's state and its own replica row).
    let paged = pages(&gw, &admin, "", 2).await;
    assert_eq!(
        paged,
        [
            (vec!["a-1".to_owned(), "a-2".to_owned()], 6),
            (vec!["b-1".to_owned(), "b-2".to_owned()], 6),
            (vec!["c-1".to_owned(), "c-2".to_owned()], 6),
        ]
    );
    let (_, first) = get(&gw, &admin, "/api/v1/clusters?limit=2").await;
    assert_eq!(first["items"][0]["state"], "connected");
    assert_eq!(first["items"][0]["labels"], json!({"team": "web"}));
    let own = &first["items"][0]["replicas"];
    assert_eq!(own.as_array().map(Vec::len), Some(1), "{own}");
    assert_eq!(own[0]["state"], "connected");
    assert_eq!(first["items"][1]["state"], "disconnected");
    // A page that ends the list exactly has no `continue`; one past the end is empty.
    let (_, last) = get(&gw, &admin, "/api/v1/clusters?limit=2&continue=b-2").await;
    assert_eq!(ids(&last), ["c-1", "c-2"]);
    assert!(last.get("continue").is_none(), "{last}");
    let (_, past) = get(&gw, &admin, "/api/v1/clusters?limit=2&continue=zzz").await;
    assert!(ids(&past).is_empty());
    assert_eq!(past["total"], 6);

    // Filters: this replica's state, and text in the id, name, server or a label, any case.
    let (_, connected) = get(&gw, &admin, "/api/v1/clusters?state=connected").await;
    assert_eq!(ids(&connected), ["a-1", "b-1"]);
    assert_eq!(connected["total"], 2);
    let (_, failing) = get(&gw, &admin, "/api/v1/clusters?state=failed").await;
    assert_eq!(ids(&failing), ["c-1"]);
    let (_, by_label) = get(&gw, &admin, "/api/v1/clusters?q=TEAM%3Dweb").await;
    assert_eq!(ids(&by_label), ["a-1", "a-2"]);
    let (_, by_label) = get(&gw, &admin, "/api/v1/clusters?q=payments").await;
    assert_eq!(ids(&by_label), ["c-1"]);
    let (_, by_name) = get(&gw, &admin, "/api/v1/clusters?q=cluster%20b-").await;
    assert_eq!(ids(&by_name), ["b-1", "b-2"]);
    let disconnected = pages(&gw, &admin, "&state=disconnected", 1).await;
    assert_eq!(
        disconnected,
        [
            (vec!["a-2".to_owned()], 3),
            (vec!["b-2".to_owned()], 3),
            (vec!["c-2".to_owned()], 3),
        ]
    );

    // Counts: every cluster, by this replica's state.
    let (status, counts) = get(&gw, &admin, "/api/v1/cluster-counts").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        counts,
        json!({"registered": 6, "states": {"connected": 2, "connecting": 0, "failed": 1, "disconnected": 3}})
    );

    // Bad parameters are a clear 400, never a silently different list.
    for (query, says) in [
        ("state=up", "unknown state `up`"),
        ("limit=0", "limit must be at least 1"),
        ("limit=-1", "limit"),
        ("page=2", "page"),
    ] {
        let (status, body) = get(&gw, &admin, &format!("/api/v1/clusters?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(body.to_string().contains(says), "{query}: {body}");
    }

    // A token sees, pages and counts only the clusters it has a grant for.
    let token = gw
        .create_token(json!({"name": "web-team", "grants": [
            {"cluster": "a-1", "access": "read"},
            {"cluster": "a-2", "access": "read"},
            {"cluster": "c-1", "access": "read"},
        ]}))
        .await?;
    let visible = pages(&gw, &token, "", 2).await;
    assert_eq!(
        visible,
        [
            (vec!["a-1".to_owned(), "a-2".to_owned()], 3),
            (vec!["c-1".to_owned()], 3),
        ]
    );
    let (_, found) = get(&gw, &token, "/api/v1/clusters?q=team%3Ddb").await;
    assert!(ids(&found).is_empty(), "{found}");
    assert_eq!(found["total"], 0);
    let (_, counts) = get(&gw, &token, "/api/v1/cluster-counts").await;
    assert_eq!(
        counts,
        json!({"registered": 3, "states": {"connected": 1, "connecting": 0, "failed": 1, "disconnected": 1}})
    );
    Ok(())
}
