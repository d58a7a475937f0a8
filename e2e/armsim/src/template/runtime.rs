//! Runtime-only values ARM resource providers add to a resource (endpoints, keys,
//! principal ids), synthesised plausibly and deterministically from the resource id.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

use super::hash::murmur64;

/// Deterministic pseudo-random bytes for `(resource id, purpose)`.
fn seeded_bytes(id: &str, purpose: &str, len: usize) -> Vec<u8> {
    let seed = format!("{}|{purpose}", id.to_lowercase());
    let mut out = Vec::with_capacity(len + 8);
    let mut counter = 0u32;
    while out.len() < len {
        out.extend_from_slice(&murmur64(format!("{seed}|{counter}").as_bytes()).to_le_bytes());
        counter += 1;
    }
    out.truncate(len);
    out
}

/// A deterministic GUID-shaped string (version 4 layout) for `(id, purpose)`.
pub fn seeded_guid(id: &str, purpose: &str) -> String {
    let mut b = seeded_bytes(id, purpose, 16);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_slice(&b)
        .map(|u| u.to_string())
        .unwrap_or_default()
}

/// A deterministic base64 key of `len` raw bytes.
pub fn seeded_key(id: &str, purpose: &str, len: usize) -> String {
    BASE64.encode(seeded_bytes(id, purpose, len))
}

fn seeded_hex(id: &str, purpose: &str, len: usize) -> String {
    seeded_bytes(id, purpose, len.div_ceil(2))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..len]
        .to_string()
}

fn public_ip(id: &str) -> String {
    let b = seeded_bytes(id, "ip", 3);
    format!("20.{}.{}.{}", b[0], b[1], b[2].max(1))
}

fn last_segment(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// What the runtime values of one resource are derived from.
struct Runtime<'a> {
    id: &'a str,
    resource_type: &'a str,
    /// The resource's own name (last segment of a child's `parent/child`).
    name: String,
    /// Lower-case, without spaces (`westeurope`).
    location: String,
    tenant_id: &'a str,
}

/// Adds the runtime-only values ARM would report for `body` (a resource as GET returns it).
pub fn synthesize(body: &mut Map<String, Value>, id: &str, resource_type: &str, tenant_id: &str) {
    let runtime = Runtime {
        id,
        resource_type,
        name: body
            .get("name")
            .and_then(Value::as_str)
            .map(|n| last_segment(n).to_string())
            .unwrap_or_default(),
        location: body
            .get("location")
            .and_then(Value::as_str)
            .unwrap_or("eastus")
            .to_lowercase()
            .replace(' ', ""),
        tenant_id,
    };
    if let Some(Value::Object(identity)) = body.get_mut("identity") {
        add_identity_ids(identity, id, tenant_id);
    }
    let props = body
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(p) = props.as_object_mut() else {
        return;
    };
    add_sub_resource_ids(p, id);
    add_provider_values(p, &runtime);
    set(p, "provisioningState", json!("Succeeded"));
}

/// Principal ids of a system-assigned identity and of each user-assigned one.
fn add_identity_ids(identity: &mut Map<String, Value>, id: &str, tenant_id: &str) {
    let kind = identity
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_lowercase();
    if kind.contains("systemassigned") {
        identity.insert("principalId".into(), json!(seeded_guid(id, "principalId")));
        identity.insert("tenantId".into(), json!(tenant_id));
    }
    if let Some(Value::Object(assigned)) = identity.get_mut("userAssignedIdentities") {
        for (uami_id, entry) in assigned.iter_mut() {
            *entry = json!({
                "principalId": seeded_guid(uami_id, "principalId"),
                "clientId": seeded_guid(uami_id, "clientId"),
            });
        }
    }
}

/// The values the resource type's provider adds: endpoints, ids, addresses.
fn add_provider_values(p: &mut Map<String, Value>, r: &Runtime) {
    match r.resource_type.to_lowercase().as_str() {
        "microsoft.storage/storageaccounts" => storage_account(p, r),
        "microsoft.network/publicipaddresses" => public_ip_address(p, r),
        "microsoft.managedidentity/userassignedidentities" => {
            set(p, "principalId", json!(seeded_guid(r.id, "principalId")));
            set(p, "clientId", json!(seeded_guid(r.id, "clientId")));
            set(p, "tenantId", json!(r.tenant_id));
        }
        "microsoft.web/sites" | "microsoft.web/sites/slots" => web_site(p, r),
        "microsoft.containerservice/managedclusters" => managed_cluster(p, r),
        "microsoft.insights/components" => insights_component(p, r),
        "microsoft.cache/redis" => {
            let host = format!("{}.redis.cache.windows.net", r.name);
            set(p, "hostName", json!(host));
            set(p, "port", json!(6379));
            set(p, "sslPort", json!(6380));
        }
        "microsoft.apimanagement/service" => api_management(p, r),
        "microsoft.containerinstance/containergroups" => container_group(p, r),
        "microsoft.network/privateendpoints" => private_endpoint(p, r),
        "microsoft.network/virtualnetworkgateways" | "microsoft.network/vpngateways" => {
            gateway(p, r)
        }
        "microsoft.resources/deploymentscripts" => {
            let script = p
                .get("scriptContent")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            set(p, "outputs", script_outputs(&script));
        }
        other => {
            if let Some((key, value)) = single_value(other, r) {
                set(p, key, value);
            }
        }
    }
}

/// The one value providers that report a single runtime property add.
fn single_value(resource_type: &str, r: &Runtime) -> Option<(&'static str, Value)> {
    let (name, location, id) = (&r.name, &r.location, r.id);
    let (key, value) = match resource_type {
        "microsoft.keyvault/vaults" => ("vaultUri", format!("https://{name}.vault.azure.net/")),
        "microsoft.documentdb/databaseaccounts" => (
            "documentEndpoint",
            format!("https://{name}.documents.azure.com:443/"),
        ),
        "microsoft.sql/servers" => (
            "fullyQualifiedDomainName",
            format!("{name}.database.windows.net"),
        ),
        "microsoft.dbforpostgresql/flexibleservers" => (
            "fullyQualifiedDomainName",
            format!("{name}.postgres.database.azure.com"),
        ),
        "microsoft.dbformysql/flexibleservers" => (
            "fullyQualifiedDomainName",
            format!("{name}.mysql.database.azure.com"),
        ),
        "microsoft.operationalinsights/workspaces" => ("customerId", seeded_guid(id, "customerId")),
        "microsoft.containerregistry/registries" => {
            ("loginServer", format!("{}.azurecr.io", name.to_lowercase()))
        }
        "microsoft.servicebus/namespaces" | "microsoft.eventhub/namespaces" => (
            "serviceBusEndpoint",
            format!("https://{name}.servicebus.windows.net:443/"),
        ),
        "microsoft.cognitiveservices/accounts" => (
            "endpoint",
            format!("https://{location}.api.cognitive.microsoft.com/"),
        ),
        "microsoft.appconfiguration/configurationstores" => {
            ("endpoint", format!("https://{name}.azconfig.io"))
        }
        "microsoft.network/frontdoors" => ("cname", format!("{name}.azurefd.net")),
        "microsoft.cdn/profiles/endpoints" => ("hostName", format!("{name}.azureedge.net")),
        "microsoft.devices/iothubs" => ("hostName", format!("{name}.azure-devices.net")),
        "microsoft.batch/batchaccounts" => (
            "accountEndpoint",
            format!("{name}.{location}.batch.azure.com"),
        ),
        "microsoft.databricks/workspaces" => ("workspaceUrl", databricks_url(id)),
        "microsoft.compute/virtualmachines" => ("vmId", seeded_guid(id, "vmId")),
        "microsoft.web/certificates" => (
            "thumbprint",
            seeded_hex(id, "thumbprint", 40).to_uppercase(),
        ),
        "microsoft.resources/deploymentscripts/logs" => ("log", String::new()),
        "microsoft.signalrservice/signalr" => ("hostName", format!("{name}.service.signalr.net")),
        "microsoft.search/searchservices" => {
            ("endpoint", format!("https://{name}.search.windows.net"))
        }
        _ => return None,
    };
    Some((key, json!(value)))
}

fn storage_account(p: &mut Map<String, Value>, r: &Runtime) {
    let name = &r.name;
    set(
        p,
        "primaryEndpoints",
        json!({
            "blob": format!("https://{name}.blob.core.windows.net/"),
            "queue": format!("https://{name}.queue.core.windows.net/"),
            "table": format!("https://{name}.table.core.windows.net/"),
            "file": format!("https://{name}.file.core.windows.net/"),
            "web": format!("https://{name}.z13.web.core.windows.net/"),
            "dfs": format!("https://{name}.dfs.core.windows.net/"),
        }),
    );
    set(p, "primaryLocation", json!(r.location));
    set(p, "statusOfPrimary", json!("available"));
}

fn public_ip_address(p: &mut Map<String, Value>, r: &Runtime) {
    set(p, "ipAddress", json!(public_ip(r.id)));
    let label = p
        .get("dnsSettings")
        .and_then(|d| d.get("domainNameLabel"))
        .and_then(Value::as_str)
        .map(str::to_string);
    if let (Some(label), Some(Value::Object(dns))) = (label, p.get_mut("dnsSettings")) {
        dns.entry("fqdn")
            .or_insert_with(|| json!(format!("{label}.{}.cloudapp.azure.com", r.location)));
    }
}

fn web_site(p: &mut Map<String, Value>, r: &Runtime) {
    let (name, id) = (&r.name, r.id);
    set(
        p,
        "defaultHostName",
        json!(format!("{name}.azurewebsites.net")),
    );
    set(p, "hostNames", json!([format!("{name}.azurewebsites.net")]));
    set(
        p,
        "outboundIpAddresses",
        json!(format!(
            "{},{}",
            public_ip(id),
            public_ip(&format!("{id}/2"))
        )),
    );
    set(
        p,
        "customDomainVerificationId",
        json!(seeded_hex(id, "domain", 64).to_uppercase()),
    );
}

fn managed_cluster(p: &mut Map<String, Value>, r: &Runtime) {
    let (name, location, id) = (&r.name, &r.location, r.id);
    let prefix = p
        .get("dnsPrefix")
        .and_then(Value::as_str)
        .unwrap_or(name)
        .to_string();
    set(
        p,
        "fqdn",
        json!(format!(
            "{prefix}-{}.hcp.{location}.azmk8s.io",
            seeded_hex(id, "fqdn", 8)
        )),
    );
    set(
        p,
        "identityProfile",
        json!({"kubeletidentity": {
            "objectId": seeded_guid(id, "kubelet-object"),
            "clientId": seeded_guid(id, "kubelet-client"),
            "resourceId": format!("{id}-agentpool"),
        }}),
    );
    set(
        p,
        "nodeResourceGroup",
        json!(format!("MC_{name}_{location}")),
    );
}

fn insights_component(p: &mut Map<String, Value>, r: &Runtime) {
    let (location, id) = (&r.location, r.id);
    let key = seeded_guid(id, "instrumentationKey");
    set(
        p,
        "ConnectionString",
        json!(format!(
            "InstrumentationKey={key};IngestionEndpoint=https://{location}-0.in.applicationinsights.azure.com/;LiveEndpoint=https://{location}.livediagnostics.monitor.azure.com/"
        )),
    );
    set(p, "InstrumentationKey", json!(key));
    set(p, "AppId", json!(seeded_guid(id, "appId")));
}

fn api_management(p: &mut Map<String, Value>, r: &Runtime) {
    let name = &r.name;
    set(
        p,
        "gatewayUrl",
        json!(format!("https://{name}.azure-api.net")),
    );
    set(p, "publicIPAddresses", json!([public_ip(r.id)]));
    for (key, host) in [
        ("portalUrl", "portal"),
        ("developerPortalUrl", "developer"),
        ("managementApiUrl", "management"),
        ("scmUrl", "scm"),
    ] {
        set(
            p,
            key,
            json!(format!("https://{name}.{host}.azure-api.net")),
        );
    }
}

fn databricks_url(id: &str) -> String {
    format!(
        "adb-{}.azuredatabricks.net",
        seeded_bytes(id, "ws", 6)
            .iter()
            .map(|b| (b % 10).to_string())
            .collect::<String>()
    )
}

fn container_group(p: &mut Map<String, Value>, r: &Runtime) {
    if let Some(Value::Object(ip)) = p.get_mut("ipAddress") {
        ip.entry("ip").or_insert_with(|| json!(public_ip(r.id)));
        let label = ip
            .get("dnsNameLabel")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(label) = label {
            ip.entry("fqdn")
                .or_insert_with(|| json!(format!("{label}.{}.azurecontainer.io", r.location)));
        }
    }
}

fn private_endpoint(p: &mut Map<String, Value>, r: &Runtime) {
    let (name, location, id) = (&r.name, &r.location, r.id);
    set(
        p,
        "customDnsConfigs",
        json!([{
            "fqdn": format!("{name}.privatelink.{location}.azure.net"),
            "ipAddresses": [private_ip(id, "pe")],
        }]),
    );
    set(
        p,
        "networkInterfaces",
        json!([{"id": format!("{}/providers/Microsoft.Network/networkInterfaces/{name}.nic.{}", resource_group_of(id), seeded_guid(id, "nic"))}]),
    );
}

fn gateway(p: &mut Map<String, Value>, r: &Runtime) {
    let id = r.id;
    if r.resource_type
        .eq_ignore_ascii_case("Microsoft.Network/vpnGateways")
    {
        set(
            p,
            "ipConfigurations",
            json!([
                {"id": "Instance0", "publicIpAddress": public_ip(&format!("{id}/0")), "privateIpAddress": private_ip(id, "gw0")},
                {"id": "Instance1", "publicIpAddress": public_ip(&format!("{id}/1")), "privateIpAddress": private_ip(id, "gw1")},
            ]),
        );
    }
    let address = private_ip(id, "bgp");
    match p.get_mut("bgpSettings") {
        Some(Value::Object(bgp)) => {
            bgp.entry("bgpPeeringAddress")
                .or_insert_with(|| json!(address));
        }
        _ => set(
            p,
            "bgpSettings",
            json!({"asn": 65515, "bgpPeeringAddress": address, "peerWeight": 0}),
        ),
    }
}

fn private_ip(id: &str, purpose: &str) -> String {
    let b = seeded_bytes(id, purpose, 2);
    format!("10.{}.{}.{}", b[0] % 16, b[1], 4 + b[0] % 200)
}

fn resource_group_of(id: &str) -> String {
    let lower = id.to_lowercase();
    match lower.find("/providers/") {
        Some(i) => id[..i].to_string(),
        None => id.to_string(),
    }
}

/// ARM gives every named sub-resource in a resource's properties (subnets, IP
/// configurations, pools, ...) an id below the resource, and IP configurations a
/// private address.
fn add_sub_resource_ids(props: &mut Map<String, Value>, id: &str) {
    for (key, value) in props.iter_mut() {
        let Value::Array(items) = value else { continue };
        for item in items.iter_mut() {
            let Value::Object(sub) = item else { continue };
            let Some(sub_name) = sub.get("name").and_then(Value::as_str).map(str::to_string) else {
                continue;
            };
            if !sub.contains_key("properties") {
                continue;
            }
            let sub_id = format!("{id}/{key}/{sub_name}");
            if key.eq_ignore_ascii_case("ipConfigurations")
                && let Some(Value::Object(ip_props)) = sub.get_mut("properties")
            {
                ip_props
                    .entry("privateIPAddress")
                    .or_insert_with(|| json!(private_ip(&sub_id, "private-ip")));
            }
            sub.entry("id").or_insert_with(|| json!(sub_id));
        }
    }
}

/// The outputs a deployment script reports: the keys its PowerShell assigns to
/// `$DeploymentScriptOutputs[...]`, with string literal values where given.
fn script_outputs(script: &str) -> Value {
    let mut outputs = Map::new();
    let marker = "$DeploymentScriptOutputs[";
    let mut rest = script;
    while let Some(pos) = rest.find(marker) {
        rest = &rest[pos + marker.len()..];
        let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            continue;
        };
        let Some(end) = rest[1..].find(quote) else {
            break;
        };
        let key = rest[1..=end].to_string();
        rest = &rest[end + 2..];
        let assigned = rest
            .trim_start_matches([']', ' '])
            .strip_prefix('=')
            .map(str::trim_start);
        let value = assigned
            .and_then(|v| {
                let q = v.chars().next().filter(|c| *c == '"' || *c == '\'')?;
                v[1..].find(q).map(|e| v[1..=e].to_string())
            })
            .unwrap_or_else(|| format!("output of {key}"));
        outputs.insert(key, json!(value));
    }
    Value::Object(outputs)
}

/// Sets `key` unless the template already declared it.
fn set(p: &mut Map<String, Value>, key: &str, value: Value) {
    p.entry(key.to_string()).or_insert(value);
}

/// The result of a `list*` action (`listKeys`, `listSecrets`, ...) on a resource: one
/// object carrying the shapes the common resource providers return.
pub fn list_action(function: &str, id: &str) -> Value {
    let key1 = seeded_key(id, "key1", 64);
    let key2 = seeded_key(id, "key2", 64);
    let host = id
        .split('/')
        .collect::<Vec<_>>()
        .chunks(2)
        .last()
        .and_then(|c| c.last())
        .map(|s| s.to_string())
        .unwrap_or_default();
    let mut out = json!({
        "keys": [
            {"keyName": "key1", "value": key1, "permissions": "FULL"},
            {"keyName": "key2", "value": key2, "permissions": "FULL"},
        ],
        "primaryKey": key1,
        "secondaryKey": key2,
        "primaryMasterKey": key1,
        "secondaryMasterKey": key2,
        "primaryReadonlyMasterKey": seeded_key(id, "ro1", 64),
        "secondaryReadonlyMasterKey": seeded_key(id, "ro2", 64),
        "primaryConnectionString": format!("Endpoint=sb://{host}.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={key1}"),
        "secondaryConnectionString": format!("Endpoint=sb://{host}.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={key2}"),
        "keyName": "RootManageSharedAccessKey",
        "connectionStrings": [
            {"connectionString": format!("AccountEndpoint=https://{host}.documents.azure.com:443/;AccountKey={key1};"), "description": "Primary SQL Connection String"},
        ],
        "masterKey": seeded_key(id, "master", 40),
        "functionKeys": {"default": seeded_key(id, "function", 40)},
        "systemKeys": {},
        "value": key1,
    });
    let lower = function.to_lowercase();
    if let Some(o) = out.as_object_mut() {
        if lower.contains("sas") {
            o.insert(
                "accountSasToken".into(),
                json!(format!(
                    "sv=2022-11-02&ss=b&srt=sco&sp=rl&sig={}",
                    seeded_hex(id, "sas", 32)
                )),
            );
            o.insert(
                "serviceSasToken".into(),
                json!(format!(
                    "sv=2022-11-02&sr=c&sp=rl&sig={}",
                    seeded_hex(id, "sas", 32)
                )),
            );
        }
        if lower.contains("credential") {
            o.insert("kubeconfigs".into(), json!([{"name": "clusterAdmin", "value": BASE64.encode(format!("apiVersion: v1\nkind: Config\nclusters: []\n# {id}\n"))}]));
            o.insert("username".into(), json!(host));
            o.insert(
                "passwords".into(),
                json!([{"name": "password", "value": key1}, {"name": "password2", "value": key2}]),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_accounts_get_endpoints_and_everything_is_deterministic() {
        let id =
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct";
        let mut a = json!({"name": "acct", "location": "westeurope", "identity": {"type": "SystemAssigned"}});
        synthesize(
            a.as_object_mut().unwrap(),
            id,
            "Microsoft.Storage/storageAccounts",
            "t",
        );
        assert_eq!(
            a["properties"]["primaryEndpoints"]["blob"],
            "https://acct.blob.core.windows.net/"
        );
        assert_eq!(a["properties"]["provisioningState"], "Succeeded");
        assert_eq!(a["identity"]["tenantId"], "t");
        let mut b = json!({"name": "acct", "location": "westeurope", "identity": {"type": "SystemAssigned"}});
        synthesize(
            b.as_object_mut().unwrap(),
            id,
            "Microsoft.Storage/storageAccounts",
            "t",
        );
        assert_eq!(a, b);
        assert_ne!(seeded_guid(id, "x"), seeded_guid(&format!("{id}2"), "x"));
        assert_eq!(
            list_action("listKeys", id)["keys"][0]["value"],
            list_action("listKeys", id)["keys"][0]["value"]
        );
    }

    #[test]
    fn sub_resources_get_ids_and_scripts_their_outputs() {
        let id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/azureFirewalls/fw";
        let mut fw = json!({"name": "fw", "properties": {"ipConfigurations": [{"name": "cfg", "properties": {}}]}});
        synthesize(
            fw.as_object_mut().unwrap(),
            id,
            "Microsoft.Network/azureFirewalls",
            "t",
        );
        let cfg = &fw["properties"]["ipConfigurations"][0];
        assert_eq!(cfg["id"], format!("{id}/ipConfigurations/cfg"));
        assert!(
            cfg["properties"]["privateIPAddress"]
                .as_str()
                .unwrap()
                .starts_with("10.")
        );
        assert_eq!(
            script_outputs(
                "$DeploymentScriptOutputs[\"test\"] = \"test this output\"\n$DeploymentScriptOutputs['n'] = $x"
            ),
            json!({"test": "test this output", "n": "output of n"})
        );
    }

    #[test]
    fn declared_properties_win_over_synthesised_ones() {
        let mut a = json!({"name": "ip", "properties": {"ipAddress": "1.2.3.4"}});
        synthesize(
            a.as_object_mut().unwrap(),
            "/x/ip",
            "Microsoft.Network/publicIPAddresses",
            "t",
        );
        assert_eq!(a["properties"]["ipAddress"], "1.2.3.4");
    }
}
