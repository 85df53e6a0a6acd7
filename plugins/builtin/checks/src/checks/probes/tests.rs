use portico_plugin_sdk::k8s::api::core::v1::{ExecAction, Probe, TCPSocketAction};
use portico_plugin_sdk::k8s::apimachinery::pkg::util::intstr::IntOrString;

use super::problems_of;

fn exec_probe() -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(vec!["true".to_owned()]),
        }),
        ..Default::default()
    }
}

#[test]
fn defaults_are_fine() {
    assert!(problems_of("liveness", &exec_probe()).is_empty());
    // Zero means "unset": the apiserver defaults it.
    let zeros = Probe {
        period_seconds: Some(0),
        timeout_seconds: Some(0),
        success_threshold: Some(0),
        ..exec_probe()
    };
    assert!(problems_of("startup", &zeros).is_empty());
}

#[test]
fn a_timeout_longer_than_the_period_is_reported_with_both_values() {
    let probe = Probe {
        period_seconds: Some(2),
        timeout_seconds: Some(5),
        ..exec_probe()
    };
    let problems = problems_of("readiness", &probe);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("timeoutSeconds 5 is longer than periodSeconds 2"));
    // The default period is 10 s.
    let probe = Probe {
        timeout_seconds: Some(11),
        ..exec_probe()
    };
    assert_eq!(problems_of("readiness", &probe).len(), 1);
}

#[test]
fn success_threshold_must_be_one_except_for_readiness() {
    let probe = Probe {
        success_threshold: Some(3),
        ..exec_probe()
    };
    assert!(problems_of("readiness", &probe).is_empty());
    assert_eq!(
        problems_of("liveness", &probe),
        ["successThreshold is 3; it must be 1 for liveness probes"]
    );
    assert_eq!(problems_of("startup", &probe).len(), 1);
}

#[test]
fn handlers_and_negative_values() {
    let none = Probe::default();
    assert!(problems_of("readiness", &none)[0].starts_with("0 handlers"));
    let two = Probe {
        tcp_socket: Some(TCPSocketAction {
            host: None,
            port: IntOrString::Int(80),
        }),
        ..exec_probe()
    };
    assert!(problems_of("readiness", &two)[0].starts_with("2 handlers"));
    let negative = Probe {
        failure_threshold: Some(-1),
        ..exec_probe()
    };
    assert_eq!(
        problems_of("readiness", &negative),
        ["failureThreshold is -1; it cannot be negative"]
    );
}
