//! Evaluator tests over whole templates: loops, conditions, nesting, 2.0 templates, errors.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::*;

struct Existing(HashMap<String, Value>);

impl ResourceLookup for Existing {
    fn get(&self, resource_id: &str) -> Option<Value> {
        self.0.get(&resource_id.to_lowercase()).cloned()
    }
}

fn nothing() -> Existing {
    Existing(HashMap::new())
}

fn ctx() -> DeploymentContext {
    DeploymentContext {
        tenant_id: "tenant-1".into(),
        subscription_id: "00000000-0000-0000-0000-000000000000".into(),
        resource_group: Some(ResourceGroupInfo {
            name: "rg1".into(),
            location: "westeurope".into(),
            tags: Map::new(),
        }),
        deployment_name: "main".into(),
        location: None,
    }
}

const RG: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg1";

fn run(template: Value, params: Value) -> Result<EvaluatedDeployment, TemplateError> {
    evaluate(&template, &params, &ctx(), &nothing())
}

fn output(d: &EvaluatedDeployment, name: &str) -> Value {
    d.outputs[name].value.clone()
}

#[test]
fn parameters_defaults_variables_and_outputs() {
    let d = run(
        json!({
            "parameters": {
                "prefix": {"type": "string", "defaultValue": "[toLower('ABC')]"},
                "count": {"type": "int", "minValue": 1, "maxValue": 5},
                "secret": {"type": "securestring"}
            },
            "variables": {
                "name": "[format('{0}-{1}', parameters('Prefix'), variables('suffix'))]",
                "suffix": "[string(parameters('count'))]"
            },
            "resources": [],
            "outputs": {
                "name": {"type": "string", "value": "[variables('name')]"},
                "n": {"type": "int", "value": "[parameters('count')]"},
                "literal": {"type": "string", "value": "[[not an expression]"}
            }
        }),
        json!({"count": {"value": 3}, "secret": {"value": "hunter2"}}),
    )
    .unwrap();
    assert_eq!(output(&d, "name"), json!("abc-3"));
    assert_eq!(d.outputs["n"].type_name, "Int");
    assert_eq!(output(&d, "literal"), json!("[not an expression]"));
    assert_eq!(d.parameters["secret"].type_name, "SecureString");
    assert_eq!(d.parameters["secret"].value, Value::Null);
    assert_eq!(d.parameters["prefix"].value, json!("abc"));
    let untyped = run(
        json!({"parameters": {"anything": {}}, "resources": [],
               "outputs": {"o": {"type": "object", "value": "[parameters('anything')]"}}}),
        json!({"anything": {"value": {"k": 1}}}),
    )
    .unwrap();
    assert_eq!(untyped.parameters["anything"].type_name, "Object");
}

#[test]
fn parameter_errors_name_the_parameter() {
    let tpl = json!({
        "parameters": {
            "sku": {"type": "string", "allowedValues": ["a", "b"]},
            "n": {"type": "int", "maxValue": 2}
        },
        "resources": []
    });
    let missing = run(tpl.clone(), json!({"n": {"value": 1}})).unwrap_err();
    assert_eq!(missing.code, "InvalidTemplate");
    assert!(
        missing.message.contains("'sku'") && missing.message.contains("not provided"),
        "{}",
        missing.message
    );
    let bad = run(
        tpl.clone(),
        json!({"sku": {"value": "c"}, "n": {"value": 1}}),
    )
    .unwrap_err();
    assert!(
        bad.message.contains("'sku'") && bad.message.contains("one of"),
        "{}",
        bad.message
    );
    let too_big = run(
        tpl.clone(),
        json!({"sku": {"value": "a"}, "n": {"value": 3}}),
    )
    .unwrap_err();
    assert!(
        too_big.message.contains("'n'") && too_big.message.contains("maximum"),
        "{}",
        too_big.message
    );
    let wrong_type = run(
        tpl.clone(),
        json!({"sku": {"value": "a"}, "n": {"value": [1]}}),
    )
    .unwrap_err();
    assert!(
        wrong_type.message.contains("'n'") && wrong_type.message.contains("Int"),
        "{}",
        wrong_type.message
    );
    let unknown = run(
        tpl,
        json!({"sku": {"value": "a"}, "n": {"value": 1}, "x": {"value": 1}}),
    )
    .unwrap_err();
    assert!(unknown.message.contains("'x'"), "{}", unknown.message);
}

#[test]
fn unknown_functions_and_variables_are_invalid_template_errors() {
    let e = run(
        json!({"resources": [], "outputs": {"o": {"type": "string", "value": "[foo('x')]"}}}),
        json!({}),
    )
    .unwrap_err();
    assert_eq!(e.code, "InvalidTemplate");
    assert!(
        e.message
            .contains("The template function 'foo' is not valid"),
        "{}",
        e.message
    );
    let e = run(json!({"resources": [], "outputs": {"o": {"type": "string", "value": "[variables('nope')]"}}}), json!({}))
        .unwrap_err();
    assert!(e.message.contains("'nope'"), "{}", e.message);
    let e = run(
        json!({"variables": {"a": "[variables('b')]", "b": "[variables('a')]"}, "resources": [],
        "outputs": {"o": {"type": "string", "value": "[variables('a')]"}}}),
        json!({}),
    )
    .unwrap_err();
    assert!(e.message.contains("cycle"), "{}", e.message);
    let e = run(
        json!({"resources": [], "outputs": {"o": {"type": "string", "value": "[utcNow()]"}}}),
        json!({}),
    )
    .unwrap_err();
    assert!(e.message.contains("'utcNow'"), "{}", e.message);
}

#[test]
fn resource_ids_names_and_unique_string_follow_arm() {
    let d = run(
        json!({
            "resources": [{
                "type": "Microsoft.Storage/storageAccounts",
                "apiVersion": "2023-01-01",
                "name": "[format('st{0}', uniqueString(resourceGroup().id))]",
                "location": "[resourceGroup().location]",
                "properties": {}
            }],
            "outputs": {
                "id": {"type": "string", "value": "[resourceId('Microsoft.Storage/storageAccounts', format('st{0}', uniqueString(resourceGroup().id)))]"},
                "blob": {"type": "string", "value": "[reference(resourceId('Microsoft.Storage/storageAccounts', format('st{0}', uniqueString(resourceGroup().id))), '2023-01-01').primaryEndpoints.blob]"},
                "key": {"type": "string", "value": "[listKeys(resourceId('Microsoft.Storage/storageAccounts', format('st{0}', uniqueString(resourceGroup().id))), '2023-01-01').keys[0].value]"}
            }
        }),
        json!({}),
    )
    .unwrap();
    let name = format!("st{}", unique_string(&[RG]));
    let id = format!("{RG}/providers/Microsoft.Storage/storageAccounts/{name}");
    assert_eq!(d.resources.len(), 1);
    assert_eq!(d.resources[0].id, id);
    assert_eq!(d.resources[0].body["location"], "westeurope");
    assert_eq!(output(&d, "id"), json!(id));
    assert_eq!(
        output(&d, "blob"),
        json!(format!("https://{name}.blob.core.windows.net/"))
    );
    assert!(output(&d, "key").as_str().unwrap().len() > 40);
}

#[test]
fn resource_id_names_a_full_id_passed_as_subscription() {
    let e = run(
        json!({
            "outputs": {
                "id": {"type": "string", "value": "[resourceId(subscription().id, 'rg', 'Microsoft.ManagedIdentity/userAssignedIdentities', 'u')]"}
            }
        }),
        json!({}),
    )
    .unwrap_err();
    assert_eq!(e.code, "InvalidTemplate");
    assert!(
        e.message
            .contains("'resourceId': argument 1 '/subscriptions/")
            && e.message.contains("subscription().subscriptionId"),
        "{}",
        e.message
    );
}

#[test]
fn copy_loops_conditions_and_children() {
    let d = run(
        json!({
            "variables": {"copy": [{"name": "names", "count": 3, "input": "[format('n{0}', copyIndex('names'))]"}]},
            "resources": [
                {
                    "type": "Microsoft.Network/virtualNetworks",
                    "apiVersion": "2023-01-01",
                    "name": "[variables('names')[copyIndex()]]",
                    "copy": {"name": "vnets", "count": 3, "mode": "serial", "batchSize": 1},
                    "condition": "[not(equals(copyIndex(), 1))]",
                    "properties": {"copy": [{"name": "subnets", "count": 2, "input": {"name": "[format('s{0}', copyIndex('subnets'))]"}}]},
                    "resources": [{
                        "type": "subnets",
                        "apiVersion": "2023-01-01",
                        "name": "extra",
                        "dependsOn": ["[resourceId('Microsoft.Network/virtualNetworks', variables('names')[copyIndex()])]"],
                        "properties": {}
                    }]
                },
                {
                    "type": "Microsoft.Resources/tags",
                    "apiVersion": "2023-01-01",
                    "name": "default",
                    "dependsOn": ["vnets"],
                    "properties": {}
                }
            ],
            "outputs": {
                "names": {"type": "array", "copy": {"count": 2, "input": "[variables('names')[copyIndex()]]"}}
            }
        }),
        json!({}),
    )
    .unwrap();
    let ids: Vec<&str> = d.resources.iter().map(|r| r.id.as_str()).collect();
    let vnet0 = format!("{RG}/providers/Microsoft.Network/virtualNetworks/n0");
    let vnet2 = format!("{RG}/providers/Microsoft.Network/virtualNetworks/n2");
    let sub0 = format!("{vnet0}/subnets/extra");
    assert!(
        ids.contains(&vnet0.as_str())
            && ids.contains(&vnet2.as_str())
            && ids.contains(&sub0.as_str())
    );
    assert!(
        !ids.iter().any(|i| i.ends_with("/n1") || i.contains("/n1/")),
        "{ids:?}"
    );
    let pos = |id: &str| ids.iter().position(|i| *i == id).unwrap();
    assert!(pos(&vnet0) < pos(&sub0));
    let tags = d
        .resources
        .iter()
        .find(|r| r.resource_type == "Microsoft.Resources/tags")
        .unwrap();
    assert_eq!(tags.depends_on.len(), 2, "{:?}", tags.depends_on);
    assert_eq!(
        d.resources[pos(&vnet0)].body["properties"]["subnets"][1]["name"],
        "s1"
    );
    assert_eq!(output(&d, "names"), json!(["n0", "n1"]));
}

#[test]
fn depends_on_errors_and_cycles() {
    let unknown = run(json!({"resources": [{"type": "A.B/c", "name": "x", "apiVersion": "1", "dependsOn": ["nothere"]}]}), json!({}))
        .unwrap_err();
    assert!(
        unknown.message.contains("'nothere' is not defined"),
        "{}",
        unknown.message
    );
    let cycle = run(
        json!({"resources": [
            {"type": "A.B/c", "name": "x", "apiVersion": "1", "dependsOn": ["y"]},
            {"type": "A.B/c", "name": "y", "apiVersion": "1", "dependsOn": ["x"]}
        ]}),
        json!({}),
    )
    .unwrap_err();
    assert!(
        cycle.message.contains("Circular dependency"),
        "{}",
        cycle.message
    );
}

#[test]
fn reference_to_conditioned_out_resource_is_an_error() {
    let e = run(
        json!({"resources": [{"type": "A.B/c", "name": "x", "apiVersion": "1", "condition": false, "properties": {}}],
               "outputs": {"o": {"type": "object", "value": "[reference('x')]"}}}),
        json!({}),
    )
    .unwrap_err();
    assert!(
        e.message.contains("condition evaluated to false"),
        "{}",
        e.message
    );
}

fn module(scope_inner: bool) -> Value {
    let mut m = json!({
        "type": "Microsoft.Resources/deployments",
        "apiVersion": "2025-04-01",
        "name": "mod1",
        "resourceGroup": "other-rg",
        "properties": {
            "mode": "Incremental",
            "template": {
                "parameters": {"p": {"type": "string", "defaultValue": "inner-default"}},
                "resources": [{"type": "Microsoft.ManagedIdentity/userAssignedIdentities", "apiVersion": "2023-01-31",
                    "name": "[parameters('p')]", "location": "[resourceGroup().location]"}],
                "outputs": {
                    "principal": {"type": "string", "value": "[reference(resourceId('Microsoft.ManagedIdentity/userAssignedIdentities', parameters('p'))).principalId]"},
                    "rg": {"type": "string", "value": "[resourceGroup().name]"}
                }
            }
        }
    });
    if scope_inner {
        m["properties"]["expressionEvaluationOptions"] = json!({"scope": "inner"});
        m["properties"]["parameters"] = json!({"p": {"value": "[parameters('name')]"}});
    }
    m
}

#[test]
fn nested_deployment_with_inner_scope() {
    let d = run(
        json!({
            "parameters": {"name": {"type": "string"}},
            "resources": [module(true)],
            "outputs": {
                "principal": {"type": "string", "value": "[reference(resourceId('other-rg', 'Microsoft.Resources/deployments', 'mod1'), '2025-04-01').outputs.principal.value]"},
                "rg": {"type": "string", "value": "[reference(resourceId('other-rg', 'Microsoft.Resources/deployments', 'mod1')).outputs.rg.value]"}
            }
        }),
        json!({"name": {"value": "id1"}}),
    )
    .unwrap();
    let identity_id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/other-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1";
    assert_eq!(d.resources[0].id, identity_id);
    assert_eq!(
        d.resources[1].resource_type,
        "Microsoft.Resources/deployments"
    );
    assert_eq!(
        d.resources[1].body["properties"]["outputResources"][0]["id"],
        identity_id
    );
    let principal = output(&d, "principal");
    assert_eq!(principal, d.resources[0].body["properties"]["principalId"]);
    assert_eq!(output(&d, "rg"), json!("other-rg"));
}

#[test]
fn nested_deployment_with_outer_scope_sees_outer_parameters() {
    let mut m = module(false);
    m["properties"]["template"]["resources"][0]["name"] = json!("[parameters('name')]");
    m["properties"]["template"]["outputs"] = json!({
        "o": {"type": "string", "value": "[parameters('name')]"},
        "rg": {"type": "string", "value": "[resourceGroup().name]"}
    });
    let d = run(
        json!({
            "parameters": {"name": {"type": "string"}},
            "resources": [m],
            "outputs": {
                "o": {"type": "string", "value": "[reference('mod1').outputs.o.value]"},
                "rg": {"type": "string", "value": "[reference('mod1').outputs.rg.value]"}
            }
        }),
        json!({"name": {"value": "outer"}}),
    )
    .unwrap();
    assert!(
        d.resources[0].id.ends_with("/userAssignedIdentities/outer"),
        "{}",
        d.resources[0].id
    );
    assert_eq!(output(&d, "o"), json!("outer"));
    assert!(d.resources[0].id.contains("/resourceGroups/other-rg/"));
    // With outer scope, functions resolve against the parent's resource group.
    assert_eq!(output(&d, "rg"), json!("rg1"));
}

#[test]
fn language_version_2_symbolic_resources_existing_and_functions() {
    let existing_id = format!("{RG}/providers/Microsoft.Network/virtualNetworks/hub");
    let lookup = Existing(HashMap::from([(
        existing_id.to_lowercase(),
        json!({"id": existing_id, "name": "hub", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}}),
    )]));
    let template = json!({
        "languageVersion": "2.0",
        "definitions": {"sku": {"type": "string", "allowedValues": ["S", "M"]}},
        "functions": [{"namespace": "__bicep", "members": {
            "double": {"parameters": [{"name": "x", "type": "int"}], "output": {"type": "int", "value": "[mul(parameters('x'), 2)]"}}
        }}],
        "parameters": {"size": {"$ref": "#/definitions/sku"}},
        "resources": {
            "hub": {"existing": true, "type": "Microsoft.Network/virtualNetworks", "apiVersion": "2023-01-01", "name": "hub"},
            "ip": {"type": "Microsoft.Network/publicIPAddresses", "apiVersion": "2023-01-01", "name": "[format('ip-{0}', parameters('size'))]",
                   "location": "westeurope", "dependsOn": ["hub"], "properties": {}}
        },
        "outputs": {
            "prefix": {"type": "string", "value": "[reference('hub').addressSpace.addressPrefixes[0]]"},
            "ip": {"type": "string", "value": "[reference('ip').ipAddress]"},
            "doubled": {"type": "int", "value": "[__bicep.double(21)]"},
            "evens": {"type": "array", "value": "[filter(range(0, 6), lambda('n', equals(mod(lambdaVariables('n'), 2), 0)))]"},
            "sum": {"type": "int", "value": "[reduce(createArray(1, 2, 3), 0, lambda('acc', 'x', add(lambdaVariables('acc'), lambdaVariables('x'))))]"},
            "sorted": {"type": "array", "value": "[sort(createArray(3, 1, 2), lambda('a', 'b', less(lambdaVariables('a'), lambdaVariables('b'))))]"},
            "byKey": {"type": "object", "value": "[toObject(createArray('a', 'b'), lambda('k', lambdaVariables('k')), lambda('k', toUpper(lambdaVariables('k'))))]"}
        }
    });
    let d = evaluate(&template, &json!({"size": {"value": "M"}}), &ctx(), &lookup).unwrap();
    assert_eq!(d.resources.len(), 1, "existing resources are not deployed");
    assert_eq!(output(&d, "prefix"), json!("10.0.0.0/16"));
    assert!(output(&d, "ip").as_str().unwrap().starts_with("20."));
    assert_eq!(output(&d, "doubled"), json!(42));
    assert_eq!(output(&d, "evens"), json!([0, 2, 4]));
    assert_eq!(output(&d, "sum"), json!(6));
    assert_eq!(output(&d, "sorted"), json!([1, 2, 3]));
    assert_eq!(output(&d, "byKey"), json!({"a": "A", "b": "B"}));
    let bad = evaluate(&template, &json!({"size": {"value": "L"}}), &ctx(), &lookup).unwrap_err();
    assert!(bad.message.contains("'size'"), "{}", bad.message);
    let missing = evaluate(
        &template,
        &json!({"size": {"value": "M"}}),
        &ctx(),
        &nothing(),
    )
    .unwrap_err();
    assert_eq!(missing.code, "ResourceNotFound");
}

#[test]
fn language_version_2_names_one_loop_element_as_symbol_index() {
    let template = json!({
        "languageVersion": "2.0",
        "resources": {
            "ips": {"copy": {"name": "ips", "count": 2}, "type": "Microsoft.Network/publicIPAddresses",
                    "apiVersion": "2023-01-01", "name": "[format('ip{0}', copyIndex())]", "location": "westeurope", "properties": {}},
            "nic": {"type": "Microsoft.Network/networkInterfaces", "apiVersion": "2023-01-01", "name": "nic",
                    "location": "westeurope", "dependsOn": ["[format('ips[{0}]', 1)]"], "properties": {}}
        },
        "outputs": {
            "second": {"type": "string", "value": "[reference(format('ips[{0}]', 1), '2023-01-01', 'full').name]"}
        }
    });
    let d = run(template.clone(), json!({})).unwrap();
    assert_eq!(output(&d, "second"), json!("ip1"));
    let mut missing = template;
    missing["resources"]["nic"]["dependsOn"] = json!(["[format('ips[{0}]', 2)]"]);
    let err = run(missing, json!({})).unwrap_err();
    assert!(
        err.message.contains("'ips[2]' is not defined"),
        "{}",
        err.message
    );
}

#[test]
fn subscription_scope_creates_resource_groups_and_deploys_into_them() {
    let sub_ctx = DeploymentContext {
        resource_group: None,
        location: Some("westus".into()),
        ..ctx()
    };
    let template = json!({
        "$schema": "https://schema.management.azure.com/schemas/2018-05-01/subscriptionDeploymentTemplate.json#",
        "resources": [
            {"type": "Microsoft.Resources/resourceGroups", "apiVersion": "2022-09-01", "name": "app-rg", "location": "northeurope"},
            {"type": "Microsoft.Resources/deployments", "apiVersion": "2025-04-01", "name": "inner", "resourceGroup": "app-rg",
             "dependsOn": ["[subscriptionResourceId('Microsoft.Resources/resourceGroups', 'app-rg')]"],
             "properties": {"expressionEvaluationOptions": {"scope": "inner"}, "mode": "Incremental", "template": {
                "resources": [],
                "outputs": {"loc": {"type": "string", "value": "[resourceGroup().location]"}}}}}
        ],
        "outputs": {
            "loc": {"type": "string", "value": "[reference(resourceId('app-rg', 'Microsoft.Resources/deployments', 'inner')).outputs.loc.value]"},
            "sub": {"type": "string", "value": "[subscription().subscriptionId]"},
            "dep": {"type": "string", "value": "[deployment().location]"}
        }
    });
    let d = evaluate(&template, &json!({}), &sub_ctx, &nothing()).unwrap();
    assert_eq!(
        d.resources[0].id,
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/app-rg"
    );
    assert_eq!(output(&d, "loc"), json!("northeurope"));
    assert_eq!(output(&d, "dep"), json!("westus"));
    let wrong_scope = evaluate(&template, &json!({}), &ctx(), &nothing()).unwrap_err();
    assert!(
        wrong_scope.message.contains("subscription"),
        "{}",
        wrong_scope.message
    );
}

#[test]
fn utc_now_uses_the_configured_clock_in_parameter_defaults() {
    let now = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let options = EvaluationOptions {
        now: Some(now),
        ..EvaluationOptions::default()
    };
    let template = json!({
        "parameters": {"stamp": {"type": "string", "defaultValue": "[utcNow('u')]"}},
        "resources": [],
        "outputs": {
            "stamp": {"type": "string", "value": "[parameters('stamp')]"},
            "later": {"type": "string", "value": "[dateTimeAdd(parameters('stamp'), 'P1DT1H')]"}
        }
    });
    let d = evaluate_with(&template, &json!({}), &ctx(), &nothing(), &options).unwrap();
    assert_eq!(output(&d, "stamp"), json!("2026-01-02 03:04:05Z"));
    assert_eq!(output(&d, "later"), json!("2026-01-03T04:04:05Z"));
}

#[test]
fn perturbed_templates_give_errors_not_panics() {
    let samples = [
        json!(null),
        json!([]),
        json!({"resources": 5}),
        json!({"resources": [5]}),
        json!({"resources": [{"type": "A.B/c"}]}),
        json!({"resources": [{"type": "A.B/c/d", "name": "x", "apiVersion": "1"}]}),
        json!({"resources": [{"type": "A.B/c", "name": "x", "copy": {"name": "l", "count": -1}}]}),
        json!({"resources": [{"type": "A.B/c", "name": "x", "copy": {"name": "l", "count": 100000}}]}),
        json!({"parameters": {"p": {"type": "strin"}}, "resources": []}),
        json!({"outputs": {"o": {"type": "int", "value": "[concat('a'"}}}),
        json!({"outputs": {"o": {"type": "int", "value": "[parameters('a')[5]]"}}}),
        json!({"outputs": {"o": {"type": "int", "value": "[createArray(1)[7]]"}}}),
        json!({"outputs": {"o": {"type": "int", "value": "[substring('abc', 2, 9)]"}}}),
        json!({"outputs": {"o": {"type": "int", "value": "[copyIndex()]"}}}),
        json!({"outputs": {"o": {"type": "int", "value": "[json('{')]"}}}),
        json!({"outputs": {"o": {"type": "int", "value": "[format('{0}')]"}}}),
        json!({"outputs": {"o": {"type": "int", "value": "['text']"}}}),
        json!({"outputs": {"o": {"type": "int", "value": "[range(0, 100001)]"}}}),
        json!({"outputs": {"o": {"type": "int", "value": "[range(9223372036854775807, 2)]"}}}),
        json!({"outputs": {"o": {"type": "string", "value": "[dateTimeAdd('2020-01-01', 'P999999999999999999Y')]"}}}),
        json!({"outputs": {"o": {"type": "string", "value": "[dateTimeAdd('2020-01-01', 'PT999999999999999999S')]"}}}),
    ];
    let recursive = json!({
        "functions": [{"namespace": "ns", "members": {"f": {"parameters": [], "output": {"type": "int", "value": "[ns.f()]"}}}}],
        "outputs": {"o": {"type": "int", "value": "[ns.f()]"}}
    });
    let e = run(recursive, json!({})).unwrap_err();
    assert!(e.message.contains("'ns.f'"), "{}", e.message);
    for t in samples {
        let e = run(t.clone(), json!({})).expect_err(&t.to_string());
        assert!(!e.message.is_empty());
    }
}

#[test]
fn deep_variable_chains_are_errors_not_stack_overflows() {
    let mut chain = serde_json::Map::new();
    for i in 0..500 {
        chain.insert(format!("v{i}"), json!(format!("[variables('v{}')]", i + 1)));
    }
    chain.insert("v500".into(), json!("end"));
    let e = run(json!({"variables": chain, "outputs": {"o": {"type": "string", "value": "[variables('v0')]"}}}), json!({}))
        .unwrap_err();
    assert!(e.message.contains("levels deep"), "{}", e.message);
    let deep = format!("[{}1{}]", "string(".repeat(30), ")".repeat(30));
    let d = run(
        json!({"outputs": {"o": {"type": "string", "value": deep}}}),
        json!({}),
    )
    .unwrap();
    assert_eq!(output(&d, "o"), json!("1"));
}

#[test]
fn deeply_nested_deployments_are_errors_not_stack_overflows() {
    let nest = |levels: usize| {
        let mut t = json!({"resources": [], "outputs": {"o": {"type": "string", "value": "[string(length(createArray(1, 2)))]"}}});
        for i in 0..levels {
            t = json!({"resources": [{
                "type": "Microsoft.Resources/deployments", "apiVersion": "2025-04-01", "name": format!("n{i}"),
                "properties": {"mode": "Incremental", "expressionEvaluationOptions": {"scope": "inner"}, "template": t}
            }]});
        }
        t
    };
    let ok = run(nest(8), json!({})).unwrap();
    assert_eq!(ok.resources.len(), 8);
    let e = run(nest(40), json!({})).unwrap_err();
    assert!(e.message.contains("nested"), "{}", e.message);
}

#[test]
fn long_dependency_chains_deploy_dependencies_first() {
    let mut resources = Vec::new();
    for i in 0..600 {
        let mut r = json!({"type": "A.B/c", "apiVersion": "1", "name": format!("r{i}")});
        if i < 599 {
            r["dependsOn"] = json!([format!("r{}", i + 1)]);
        }
        resources.push(r);
    }
    let long_chain = run(json!({"resources": resources}), json!({})).unwrap();
    assert_eq!(
        long_chain.resources[0].name, "r599",
        "dependencies are created first"
    );
}

#[test]
fn errors_never_echo_secure_values() {
    let secret = "Sup3r-S3cret-Value";
    let uses = [
        "[int(parameters('pw'))]",
        "[float(parameters('pw'))]",
        "[dateTimeAdd(parameters('pw'), 'P1D')]",
        "[dateTimeAdd('2020-01-01', parameters('pw'))]",
        "[uri(parameters('pw'), 'x')]",
        "[json(parameters('pw'))]",
        "[parameters('pw').missing]",
        "[base64ToString(parameters('pw'))]",
    ];
    for expression in uses {
        let e = run(
            json!({
                "parameters": {"pw": {"type": "securestring"}},
                "resources": [],
                "outputs": {"o": {"type": "string", "value": expression}}
            }),
            json!({"pw": {"value": secret}}),
        )
        .unwrap_err();
        assert!(!e.message.contains(secret), "{expression}: {}", e.message);
    }
    let e = run(
        json!({"parameters": {"pw": {"type": "securestring", "allowedValues": ["a"]}}, "resources": []}),
        json!({"pw": {"value": secret}}),
    )
    .unwrap_err();
    assert!(
        e.message.contains("'pw'") && !e.message.contains(secret),
        "{}",
        e.message
    );
}

#[test]
fn deployment_resource_comparison_logical_and_date_functions() {
    let template = json!({
        "resources": [],
        "outputs": {
            "subRes": {"type": "string", "value": "[subscriptionResourceId('Microsoft.Resources/resourceGroups', 'rg2')]"},
            "tenantRes": {"type": "string", "value": "[tenantResourceId('Microsoft.Authorization/policyDefinitions', 'p1')]"},
            "extRes": {"type": "string", "value": "[extensionResourceId(resourceGroup().id, 'Microsoft.Authorization/locks', 'l1')]"},
            "mgRes": {"type": "string", "value": "[managementGroupResourceId('mg1', 'Microsoft.Authorization/policyDefinitions', 'p1')]"},
            "crossRg": {"type": "string", "value": "[resourceId('other', 'Microsoft.Network/virtualNetworks/subnets', 'v', 's')]"},
            "crossSub": {"type": "string", "value": "[resourceId('s2', 'other', 'Microsoft.Web/sites', 'w')]"},
            "toEpoch": {"type": "int", "value": "[dateTimeToEpoch('2023-02-16T00:00:00Z')]"},
            "fromEpoch": {"type": "string", "value": "[dateTimeFromEpoch(1683040573)]"},
            "zones": {"type": "array", "value": "[pickZones('Microsoft.Compute', 'virtualMachines', 'westus2')]"},
            "noZones": {"type": "array", "value": "[pickZones('Microsoft.Compute', 'virtualMachines', 'northcentralus')]"},
            "lazyIf": {"type": "string", "value": "[if(true(), 'a', reference('/subscriptions/x/resourceGroups/y/providers/A.B/c/missing').p)]"},
            "logic": {"type": "array", "value": "[createArray(and(true(), false()), or(false(), true()), less(1, 2), greaterOrEquals('b', 'a'), not(equals('A', 'a')))]"},
            "env": {"type": "string", "value": "[environment().suffixes.storage]"},
            "ids": {"type": "array", "value": "[createArray(subscription().subscriptionId, tenant().tenantId, deployment().name, resourceGroup().location)]"},
            "unique": {"type": "string", "value": "[uniqueString(subscription().subscriptionId)]"},
            "offsets": {"type": "array", "copy": {"count": 2, "input": "[copyIndex(1)]"}}
        }
    });
    let d = run(template, json!({})).unwrap();
    let sub = "/subscriptions/00000000-0000-0000-0000-000000000000";
    assert_eq!(
        output(&d, "subRes"),
        json!(format!("{sub}/resourceGroups/rg2"))
    );
    assert_eq!(
        output(&d, "tenantRes"),
        json!("/providers/Microsoft.Authorization/policyDefinitions/p1")
    );
    assert_eq!(
        output(&d, "extRes"),
        json!(format!("{RG}/providers/Microsoft.Authorization/locks/l1"))
    );
    assert_eq!(
        output(&d, "mgRes"),
        json!(
            "/providers/Microsoft.Management/managementGroups/mg1/providers/Microsoft.Authorization/policyDefinitions/p1"
        )
    );
    assert_eq!(
        output(&d, "crossRg"),
        json!(format!(
            "{sub}/resourceGroups/other/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
        ))
    );
    assert_eq!(
        output(&d, "crossSub"),
        json!("/subscriptions/s2/resourceGroups/other/providers/Microsoft.Web/sites/w")
    );
    assert_eq!(output(&d, "toEpoch"), json!(1_676_505_600));
    assert_eq!(output(&d, "fromEpoch"), json!("2023-05-02T15:16:13Z"));
    assert_eq!(output(&d, "zones"), json!(["1"]));
    assert_eq!(output(&d, "noZones"), json!([]));
    assert_eq!(output(&d, "lazyIf"), json!("a"));
    assert_eq!(output(&d, "logic"), json!([false, true, true, true, true]));
    assert_eq!(output(&d, "env"), json!("core.windows.net"));
    assert_eq!(
        output(&d, "ids"),
        json!([
            "00000000-0000-0000-0000-000000000000",
            "tenant-1",
            "main",
            "westeurope"
        ])
    );
    assert_eq!(
        output(&d, "unique"),
        json!(unique_string(&["00000000-0000-0000-0000-000000000000"]))
    );
    assert_eq!(output(&d, "offsets"), json!([1, 2]));
}

#[test]
fn template_spec_links_deploy_the_spec_main_template() {
    let spec_id = format!("{RG}/providers/Microsoft.Resources/templateSpecs/spec/versions/1.0");
    let lookup = Existing(HashMap::from([(
        spec_id.to_lowercase(),
        json!({"id": spec_id, "properties": {"mainTemplate": {
            "parameters": {"n": {"type": "string"}},
            "resources": [{"type": "Microsoft.Network/publicIPAddresses", "apiVersion": "2023-01-01", "name": "[parameters('n')]"}],
            "outputs": {"ip": {"type": "string", "value": "[reference(parameters('n')).ipAddress]"}}
        }}}),
    )]));
    let template = json!({
        "resources": [{
            "type": "Microsoft.Resources/deployments", "apiVersion": "2025-04-01", "name": "fromSpec",
            "properties": {"mode": "Incremental", "templateLink": {"id": spec_id}, "parameters": {"n": {"value": "ip1"}}}
        }],
        "outputs": {"ip": {"type": "string", "value": "[reference('fromSpec').outputs.ip.value]"}}
    });
    let d = evaluate(&template, &json!({}), &ctx(), &lookup).unwrap();
    assert!(d.resources[0].id.ends_with("/publicIPAddresses/ip1"));
    assert_eq!(
        output(&d, "ip"),
        d.resources[0].body["properties"]["ipAddress"]
    );
    let missing = evaluate(&template, &json!({}), &ctx(), &nothing()).unwrap_err();
    assert_eq!(missing.code, "ResourceNotFound");
    let mut by_uri = template.clone();
    by_uri["resources"][0]["properties"]["templateLink"] =
        json!({"uri": "https://example.invalid/t.json"});
    let e = evaluate(&by_uri, &json!({}), &ctx(), &lookup).unwrap_err();
    assert!(e.message.contains("templateLink.uri"), "{}", e.message);
}

#[test]
fn resources_of_the_arm_extension_deploy_and_other_extensions_are_refused() {
    let storage = json!({"extension": "az", "type": "Microsoft.Storage/storageAccounts",
                         "apiVersion": "2023-01-01", "name": "sa1", "location": "westeurope", "properties": {}});
    let with_az = json!({
        "languageVersion": "2.2-experimental",
        "extensions": {"az": {"name": "AzureResourceManager", "version": "0.2.896"}},
        "resources": {"sa": storage.clone()}
    });
    let d = run(with_az, json!({})).unwrap();
    assert_eq!(d.resources.len(), 1);
    assert_eq!(d.resources[0].name, "sa1");

    let imports = json!({
        "languageVersion": "2.0",
        "imports": {"az": {"provider": "AzureResourceManager", "version": "0.2.896"}},
        "resources": {"sa": {"import": "az", "type": "Microsoft.Storage/storageAccounts",
                             "apiVersion": "2023-01-01", "name": "sa1", "location": "westeurope", "properties": {}}}
    });
    assert_eq!(run(imports, json!({})).unwrap().resources.len(), 1);

    let undeclared = json!({"languageVersion": "2.0", "resources": {"sa": storage}});
    let err = run(undeclared, json!({})).unwrap_err();
    assert_eq!(err.code, "InvalidTemplate");
    assert!(err.message.contains("'az'"), "{}", err.message);

    let kubernetes = json!({
        "languageVersion": "2.2-experimental",
        "extensions": {"k8s": {"name": "Kubernetes", "version": "1.0.0"}},
        "resources": {}
    });
    let err = run(kubernetes, json!({})).unwrap_err();
    assert_eq!(err.code, "InvalidTemplate");
    assert!(
        err.message.contains("'k8s' (Kubernetes 1.0.0)"),
        "{}",
        err.message
    );

    let configured = json!({
        "languageVersion": "2.2-experimental",
        "resources": {"m": {"type": "Microsoft.Resources/deployments", "apiVersion": "2025-04-01", "name": "m",
            "properties": {"mode": "Incremental", "expressionEvaluationOptions": {"scope": "inner"},
                           "extensionConfigs": {"k8s": {"namespace": {"value": "ns"}}},
                           "template": {"languageVersion": "2.0", "resources": {}}}}}
    });
    let err = run(configured, json!({})).unwrap_err();
    assert!(
        err.message.contains("configures the extension 'k8s'"),
        "{}",
        err.message
    );
}
