//! Management locks over HTTPS: what they refuse, what they leave alone, and
//! that removing them lets deletes through again.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const LOCK_API: &str = "2020-05-01";

fn lock_path(scope: &str, name: &str) -> String {
    format!("{scope}/providers/Microsoft.Authorization/locks/{name}?api-version={LOCK_API}")
}

fn lock_body(level: &str) -> Value {
    json!({ "properties": { "level": level, "notes": "kept by the tests" } })
}

fn scope_locked(operation: &str, id: &str, locked: &str) -> String {
    format!(
        "The scope '{id}' cannot perform {operation} operation because following scope(s) are locked: '{locked}'. Please remove the lock and try again."
    )
}

fn vnet_id(rg: &str, name: &str) -> String {
    format!(
        "{}/providers/Microsoft.Network/virtualNetworks/{name}",
        rg_path(rg)
    )
}

/// `GET /_armsim/inventory`: the resource ids and the lock bodies.
async fn inventory(h: &Harness) -> (Vec<String>, Vec<Value>) {
    let body: Value = h.get("/_armsim/inventory").await.body;
    let ids = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_ascii_lowercase())
        .collect();
    (ids, body["locks"].as_array().unwrap().clone())
}

async fn deploy_accounts(h: &Harness, rg: &str, names: &[&str]) -> Value {
    let created = h
        .put(
            &format!("{}?api-version={API}", deployment_path(rg, "accounts")),
            storage_deployment(names, json!({})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    h.wait_status(created.header("azure-asyncoperation").unwrap())
        .await
}

async fn put_vnet(h: &Harness, rg: &str, name: &str) {
    let answer = h
        .put(
            &format!("{}?api-version=2024-01-01", vnet_id(rg, name)),
            json!({
                "location": "westeurope",
                "properties": { "addressSpace": { "addressPrefixes": ["10.0.0.0/16"] } }
            }),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
}

#[tokio::test]
async fn a_group_lock_refuses_deleting_the_group_until_it_is_removed() {
    let h = Harness::start(quick_config()).await;
    h.create_group("locked1").await;
    h.create_group("locked10").await;
    assert_eq!(
        deploy_accounts(&h, "locked1", &["sa1"]).await["status"],
        "Succeeded"
    );
    let group = rg_path("locked1");
    let lock = lock_path(&group, "keep");

    let bad_level = h.put(&lock, lock_body("Sometimes")).await;
    assert_eq!(bad_level.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_level.code(), "InvalidRequestContent");
    let no_group = h
        .put(
            &lock_path(&rg_path("absent"), "keep"),
            lock_body("CanNotDelete"),
        )
        .await;
    assert_eq!(no_group.status, StatusCode::NOT_FOUND);
    assert_eq!(no_group.code(), "ResourceGroupNotFound");
    assert_eq!(h.get(&lock).await.code(), "LockNotFound");

    let created = h.put(&lock, lock_body("CanNotDelete")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let lock_id = format!("{group}/providers/Microsoft.Authorization/locks/keep");
    assert_eq!(
        created.body,
        json!({
            "id": lock_id,
            "name": "keep",
            "type": "Microsoft.Authorization/locks",
            "properties": { "level": "CanNotDelete", "notes": "kept by the tests" }
        })
    );
    assert_eq!(
        h.put(&lock, lock_body("CanNotDelete")).await.status,
        StatusCode::OK
    );
    assert_eq!(h.get(&lock).await.body, created.body);

    let refused = h.delete(&format!("{group}?api-version={API}")).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.code(), "ScopeLocked");
    assert_eq!(refused.header("x-ms-error-code"), Some("ScopeLocked"));
    assert_eq!(
        refused.body["error"]["message"],
        scope_locked("delete", &group, &group)
    );
    let account = account_id("locked1", "sa1");
    let refused = h.delete(&format!("{account}?api-version=2023-01-01")).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(
        refused.body["error"]["message"],
        scope_locked("delete", &account, &group)
    );
    let (ids, locks) = inventory(&h).await;
    assert!(ids.contains(&group.to_ascii_lowercase()));
    assert!(ids.contains(&account.to_ascii_lowercase()));
    assert_eq!(locks, vec![created.body.clone()]);
    assert_eq!(h.sim.locks(), locks);
    assert_eq!(
        h.sim.resource(&group).unwrap()["properties"]["provisioningState"],
        "Succeeded",
        "a refused delete changes nothing"
    );

    // A lock on `locked1` does not reach `locked10`.
    let sibling = h
        .delete(&format!("{}?api-version={API}", rg_path("locked10")))
        .await;
    assert_eq!(sibling.status, StatusCode::ACCEPTED);

    assert_eq!(h.delete(&lock).await.status, StatusCode::OK);
    assert_eq!(h.delete(&lock).await.status, StatusCode::NO_CONTENT);
    assert_eq!(h.get(&lock).await.status, StatusCode::NOT_FOUND);
    let deleted = h.delete(&format!("{group}?api-version={API}")).await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED, "{:?}", deleted.body);
    assert_eq!(
        h.wait_location(deleted.header("location").unwrap())
            .await
            .status,
        StatusCode::OK
    );
    let (ids, locks) = inventory(&h).await;
    assert!(!ids.iter().any(|id| id.contains("/resourcegroups/locked1")));
    assert!(locks.is_empty());

    let counters = h.sim.counters();
    assert_eq!(counters.route("PUT locks"), 4);
    assert_eq!(counters.route("DELETE locks"), 2);
    assert_eq!(counters.route("GET locks"), 3);
}

#[tokio::test]
async fn a_resource_lock_refuses_its_delete_and_its_groups_but_not_a_siblings() {
    let h = Harness::start(quick_config()).await;
    h.create_group("net").await;
    put_vnet(&h, "net", "vnet1").await;
    put_vnet(&h, "net", "vnet2").await;
    let vnet1 = vnet_id("net", "vnet1");
    let created = h
        .put(&lock_path(&vnet1, "pin"), lock_body("CanNotDelete"))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(
        created.body["id"],
        format!("{vnet1}/providers/Microsoft.Authorization/locks/pin")
    );

    let refused = h.delete(&format!("{vnet1}?api-version=2024-01-01")).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(
        refused.body["error"]["message"],
        scope_locked("delete", &vnet1, &vnet1)
    );
    let group = rg_path("net");
    let refused = h.delete(&format!("{group}?api-version={API}")).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(
        refused.body["error"]["message"],
        scope_locked("delete", &group, &vnet1)
    );

    let vnet2 = vnet_id("net", "vnet2");
    let deleted = h.delete(&format!("{vnet2}?api-version=2024-01-01")).await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
    h.wait_location(deleted.header("location").unwrap()).await;
    let (ids, _) = inventory(&h).await;
    assert!(!ids.contains(&vnet2.to_ascii_lowercase()));
    assert!(ids.contains(&vnet1.to_ascii_lowercase()));
    assert!(ids.contains(&group.to_ascii_lowercase()));

    let listed = h
        .get(&format!(
            "{group}/providers/Microsoft.Authorization/locks?api-version={LOCK_API}"
        ))
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["value"], json!([created.body]));
}

#[tokio::test]
async fn read_only_refuses_writes_below_it() {
    let h = Harness::start(quick_config()).await;
    h.create_group("frozen").await;
    let group = rg_path("frozen");
    let lock = lock_path(&group, "freeze");
    assert_eq!(
        h.put(&lock, lock_body("ReadOnly")).await.status,
        StatusCode::CREATED
    );

    let account = account_id("frozen", "direct");
    let account_path = format!("{account}?api-version=2023-01-01");
    let account_body = json!({ "location": "westeurope", "kind": "StorageV2" });
    let refused = h.put(&account_path, account_body.clone()).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.code(), "ScopeLocked");
    assert_eq!(
        refused.body["error"]["message"],
        scope_locked("write", &account, &group)
    );
    let retag = h
        .put(
            &format!("{group}?api-version={API}"),
            json!({ "location": "westeurope", "tags": { "env": "changed" } }),
        )
        .await;
    assert_eq!(retag.status, StatusCode::CONFLICT);
    assert_eq!(h.sim.resource(&group).unwrap()["tags"]["env"], "test");

    let status = deploy_accounts(&h, "frozen", &["viadeploy"]).await;
    assert_eq!(status["status"], "Failed");
    assert_eq!(status["error"]["code"], "DeploymentFailed");
    assert_eq!(status["error"]["details"][0]["code"], "ScopeLocked");
    assert_eq!(
        status["error"]["details"][0]["message"],
        scope_locked("write", &account_id("frozen", "viadeploy"), &group)
    );
    assert!(h.sim.resource(&account_id("frozen", "viadeploy")).is_none());
    assert!(h.sim.resource(&account).is_none());

    assert_eq!(h.delete(&lock).await.status, StatusCode::OK);
    let written = h.put(&account_path, account_body).await;
    assert_eq!(written.status, StatusCode::CREATED, "{:?}", written.body);
    assert_eq!(written.body["id"], account);
    assert_eq!(written.body["properties"]["provisioningState"], "Succeeded");
}

#[tokio::test]
async fn a_stack_delete_with_a_locked_managed_resource_fails_and_keeps_it() {
    let h = Harness::start(quick_config()).await;
    h.create_group("stacked").await;
    let path = format!("{}?api-version={STACK_API}", stack_path("stacked", "st"));
    let mut body = storage_deployment(&["kept", "gone"], json!({}));
    let properties = body["properties"].as_object_mut().unwrap();
    properties.remove("mode");
    properties.insert(
        "actionOnUnmanage".into(),
        json!({ "resources": "delete", "resourceGroups": "delete" }),
    );
    properties.insert("denySettings".into(), json!({ "mode": "none" }));
    let created = h.put(&path, body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(
        h.wait_status(created.header("azure-asyncoperation").unwrap())
            .await["status"],
        "succeeded"
    );
    let kept = account_id("stacked", "kept");
    let lock = lock_path(&kept, "pin");
    assert_eq!(
        h.put(&lock, lock_body("CanNotDelete")).await.status,
        StatusCode::CREATED
    );

    let delete_path = format!("{path}&unmanageAction.Resources=delete");
    let deleted = h.delete(&delete_path).await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
    let result = h.wait_location(deleted.header("location").unwrap()).await;
    assert_eq!(result.status, StatusCode::BAD_REQUEST);
    assert_eq!(result.code(), "DeploymentStackDeleteResourcesFailed");
    assert_eq!(result.body["error"]["details"][0]["code"], "ScopeLocked");
    assert_eq!(
        result.body["error"]["details"][0]["message"],
        scope_locked("delete", &kept, &kept)
    );

    let stack = h.get(&path).await;
    assert_eq!(stack.status, StatusCode::OK);
    let props = &stack.body["properties"];
    assert_eq!(props["provisioningState"], "failed");
    assert_eq!(
        props["error"]["code"],
        "DeploymentStackDeleteResourcesFailed"
    );
    assert_eq!(
        props["resources"],
        json!([{ "id": kept, "status": "deleteFailed", "denyStatus": "none" }])
    );
    assert_eq!(props["failedResources"][0]["id"], kept);
    assert_eq!(props["failedResources"][0]["error"]["code"], "ScopeLocked");
    assert_eq!(
        props["deletedResources"],
        json!([{ "id": account_id("stacked", "gone") }])
    );
    assert!(h.sim.resource(&kept).is_some());
    assert!(h.sim.resource(&account_id("stacked", "gone")).is_none());

    assert_eq!(h.delete(&lock).await.status, StatusCode::OK);
    let deleted = h.delete(&delete_path).await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED);
    assert_eq!(
        h.wait_location(deleted.header("location").unwrap())
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(h.get(&path).await.status, StatusCode::NOT_FOUND);
    assert!(h.sim.resource(&kept).is_none());
}

#[tokio::test]
async fn complete_mode_and_stack_updates_keep_locked_resources_and_fail() {
    let h = Harness::start(quick_config()).await;
    h.create_group("tidy").await;
    assert_eq!(
        deploy_accounts(&h, "tidy", &["stay", "pinned"]).await["status"],
        "Succeeded"
    );
    let pinned = account_id("tidy", "pinned");
    assert_eq!(
        h.put(&lock_path(&pinned, "pin"), lock_body("CanNotDelete"))
            .await
            .status,
        StatusCode::CREATED
    );
    let mut complete = storage_deployment(&["stay"], json!({}));
    complete["properties"]["mode"] = json!("Complete");
    let created = h
        .put(
            &format!("{}?api-version={API}", deployment_path("tidy", "complete")),
            complete,
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let status = h
        .wait_status(created.header("azure-asyncoperation").unwrap())
        .await;
    assert_eq!(status["status"], "Failed");
    assert_eq!(status["error"]["code"], "DeploymentFailed");
    assert_eq!(
        status["error"]["details"][0]["message"],
        scope_locked("delete", &pinned, &pinned)
    );
    assert!(h.sim.resource(&pinned).is_some());

    h.create_group("stack-tidy").await;
    let path = format!("{}?api-version={STACK_API}", stack_path("stack-tidy", "st"));
    let stack_body = |names: &[&str]| {
        let mut body = storage_deployment(names, json!({}));
        let properties = body["properties"].as_object_mut().unwrap();
        properties.remove("mode");
        properties.insert(
            "actionOnUnmanage".into(),
            json!({ "resources": "delete", "resourceGroups": "delete" }),
        );
        properties.insert("denySettings".into(), json!({ "mode": "none" }));
        body
    };
    let created = h.put(&path, stack_body(&["keep", "dropped"])).await;
    assert_eq!(
        h.wait_status(created.header("azure-asyncoperation").unwrap())
            .await["status"],
        "succeeded"
    );
    let dropped = account_id("stack-tidy", "dropped");
    assert_eq!(
        h.put(&lock_path(&dropped, "pin"), lock_body("ReadOnly"))
            .await
            .status,
        StatusCode::CREATED
    );
    let updated = h.put(&path, stack_body(&["keep"])).await;
    let status = h
        .wait_status(updated.header("azure-asyncoperation").unwrap())
        .await;
    assert_eq!(status["status"], "failed");
    assert_eq!(
        status["error"]["code"],
        "DeploymentStackDeleteResourcesFailed"
    );
    assert_eq!(status["error"]["details"][0]["code"], "ScopeLocked");
    let props = h.get(&path).await.body["properties"].clone();
    assert_eq!(
        props["resources"],
        json!([
            { "id": account_id("stack-tidy", "keep"), "status": "managed", "denyStatus": "none" },
            { "id": dropped, "status": "deleteFailed", "denyStatus": "none" }
        ])
    );
    assert!(h.sim.resource(&dropped).is_some());
}
