use std::collections::BTreeMap;

use portico_plugin_sdk::k8s::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement,
};

use super::{describe, matches};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn expression(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
    LabelSelectorRequirement {
        key: key.to_owned(),
        operator: operator.to_owned(),
        values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
    }
}

#[test]
fn an_empty_selector_matches_everything() {
    assert!(matches(&LabelSelector::default(), None));
    assert!(matches(
        &LabelSelector::default(),
        Some(&labels(&[("a", "b")]))
    ));
}

#[test]
fn match_labels_and_expressions_are_anded() {
    let selector = LabelSelector {
        match_labels: Some(labels(&[("app", "web")])),
        match_expressions: Some(vec![expression("tier", "In", &["front", "edge"])]),
    };
    assert!(matches(
        &selector,
        Some(&labels(&[("app", "web"), ("tier", "edge")]))
    ));
    assert!(!matches(
        &selector,
        Some(&labels(&[("app", "web"), ("tier", "db")]))
    ));
    assert!(!matches(&selector, Some(&labels(&[("tier", "edge")]))));
    assert_eq!(describe(&selector), "app=web,tier In (front,edge)");
}

#[test]
fn not_in_and_does_not_exist_match_objects_without_the_key() {
    let not_in = LabelSelector {
        match_expressions: Some(vec![expression("env", "NotIn", &["prod"])]),
        ..Default::default()
    };
    assert!(matches(&not_in, None));
    assert!(matches(&not_in, Some(&labels(&[("env", "dev")]))));
    assert!(!matches(&not_in, Some(&labels(&[("env", "prod")]))));
    let absent = LabelSelector {
        match_expressions: Some(vec![expression("env", "DoesNotExist", &[])]),
        ..Default::default()
    };
    assert!(matches(&absent, None));
    assert!(!matches(&absent, Some(&labels(&[("env", "dev")]))));
    let present = LabelSelector {
        match_expressions: Some(vec![expression("env", "Exists", &[])]),
        ..Default::default()
    };
    assert!(!matches(&present, None));
    assert!(matches(&present, Some(&labels(&[("env", "")]))));
}

#[test]
fn an_unknown_operator_matches_nothing() {
    let selector = LabelSelector {
        match_expressions: Some(vec![expression("env", "Gt", &["1"])]),
        ..Default::default()
    };
    assert!(!matches(&selector, Some(&labels(&[("env", "2")]))));
}
