//! The built-in templates of the legacy resource types compile with the project's Bicep
//! compiler (as the controller will compile them) and tag what they create.

use azure_driver_shim::mapping::builtin_template;
use azure_driver_shim::request::Lifecycle;

#[test]
fn builtin_templates_compile_and_tag_their_resources() {
    let cases = [
        ("AzureResourceGroup", Lifecycle::Create),
        ("AzureVNet", Lifecycle::Create),
        ("AzureSubnet", Lifecycle::Create),
        ("AzureNetworkSecurityGroup", Lifecycle::Create),
        ("AzureRouteTable", Lifecycle::Create),
        ("AzureStorageAccount", Lifecycle::Create),
        (
            "AzureVNet",
            Lifecycle::Operation("CreateVnetPeering".into()),
        ),
    ];
    for (kind, lifecycle) in cases {
        let source = builtin_template(kind, &lifecycle).expect("a built-in template");
        let compiled = bicep::compile_source(
            &format!("{kind}.bicep"),
            source,
            &bicep::MapResolver::default(),
        )
        .unwrap_or_else(|err| panic!("{kind} {lifecycle:?} does not compile: {err:?}"));
        let text = compiled.to_json_string();
        // Subnets are child resources without tags in ARM.
        if kind != "AzureSubnet" {
            assert!(text.contains("Cp4na"), "{kind}: no Creator tag in {text}");
        }
    }
}
