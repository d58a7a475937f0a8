//! Names of the built-in functions of the `sys` and `az` namespaces.

const SYS: &[&str] = &[
    "any",
    "array",
    "base64",
    "base64ToJson",
    "base64ToString",
    "bool",
    "coalesce",
    "concat",
    "contains",
    "dataUri",
    "dataUriToString",
    "dateTimeAdd",
    "dateTimeFromEpoch",
    "dateTimeToEpoch",
    "empty",
    "endsWith",
    "filter",
    "first",
    "flatten",
    "format",
    "groupBy",
    "guid",
    "indexOf",
    "int",
    "intersection",
    "items",
    "join",
    "json",
    "lambda",
    "last",
    "lastIndexOf",
    "length",
    "loadFileAsBase64",
    "loadJsonContent",
    "loadTextContent",
    "loadYamlContent",
    "map",
    "mapValues",
    "like",
    "distinct",
    "max",
    "min",
    "newGuid",
    "objectKeys",
    "padLeft",
    "parseCidr",
    "range",
    "readEnvironmentVariable",
    "reduce",
    "replace",
    "shallowMerge",
    "skip",
    "sort",
    "split",
    "startsWith",
    "string",
    "substring",
    "take",
    "toLower",
    "toObject",
    "toUpper",
    "trim",
    "union",
    "uniqueString",
    "uri",
    "uriComponent",
    "uriComponentToString",
    "utcNow",
    "cidrSubnet",
    "cidrHost",
    "buildUri",
    "parseUri",
    "fail",
    "tryGet",
    "toLower",
    "getSecret",
    "description",
    "metadata",
    "secure",
    "allowed",
    "minValue",
    "maxValue",
    "minLength",
    "maxLength",
    "batchSize",
    "export",
    "sealed",
    "discriminator",
    "onlyIfNotExists",
    "retryOn",
    "not",
    "and",
    "or",
    "equals",
    "less",
    "lessOrEquals",
    "greater",
    "greaterOrEquals",
    "add",
    "sub",
    "mul",
    "div",
    "mod",
    "if",
    "true",
    "false",
    "null",
    "createArray",
    "createObject",
    "nullable",
    "nameof",
    "loadDirectoryFileInfo",
];

const AZ: &[&str] = &[
    "deployment",
    "environment",
    "extensionResourceId",
    "managementGroup",
    "managementGroupResourceId",
    "pickZones",
    "providers",
    "reference",
    "resourceGroup",
    "resourceId",
    "subscription",
    "subscriptionResourceId",
    "tenant",
    "tenantResourceId",
    "deployer",
    "listKeys",
    "listSecrets",
    "listAccountSas",
    "listServiceSas",
    "toLogicalZone",
    "toPhysicalZone",
];

/// True for a function (or decorator) name known in the given namespace
/// (`None` = either built-in namespace).
pub fn is_builtin(namespace: Option<&str>, name: &str) -> bool {
    match namespace {
        Some("sys") => SYS.contains(&name),
        Some("az") => AZ.contains(&name) || name.starts_with("list"),
        None => SYS.contains(&name) || AZ.contains(&name) || name.starts_with("list"),
        Some(_) => false,
    }
}

/// Accepted argument counts `(min, max)` of built-in functions whose signature is
/// fixed; `None` for functions not listed here (not checked).
pub fn arity(name: &str) -> Option<(usize, usize)> {
    const MANY: usize = usize::MAX;
    Some(match name {
        "newGuid" | "deployment" | "environment" | "tenant" => (0, 0),
        "utcNow" | "subscription" | "managementGroup" => (0, 1),
        "resourceGroup" => (0, 2),
        "any"
        | "array"
        | "base64"
        | "base64ToJson"
        | "base64ToString"
        | "bool"
        | "dataUri"
        | "dataUriToString"
        | "dateTimeFromEpoch"
        | "dateTimeToEpoch"
        | "empty"
        | "first"
        | "last"
        | "flatten"
        | "int"
        | "items"
        | "json"
        | "length"
        | "string"
        | "toLower"
        | "toUpper"
        | "trim"
        | "uriComponent"
        | "uriComponentToString"
        | "objectKeys"
        | "nameof"
        | "loadFileAsBase64" => (1, 1),
        "contains" | "endsWith" | "startsWith" | "filter" | "map" | "sort" | "mapValues"
        | "indexOf" | "lastIndexOf" | "join" | "range" | "skip" | "take" | "split" | "uri" => {
            (2, 2)
        }
        "replace" | "reduce" => (3, 3),
        "dateTimeAdd" | "padLeft" | "substring" | "toObject" | "groupBy" => (2, 3),
        "loadTextContent" => (1, 2),
        "loadJsonContent" | "reference" => (1, 3),
        "coalesce" | "concat" | "format" | "guid" | "max" | "min" | "uniqueString" => (1, MANY),
        "intersection" | "resourceId" | "subscriptionResourceId" | "tenantResourceId" => (2, MANY),
        "extensionResourceId" | "pickZones" => (3, MANY),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_both_namespaces() {
        assert!(is_builtin(None, "uniqueString"));
        assert!(is_builtin(Some("az"), "resourceGroup"));
        assert!(!is_builtin(Some("sys"), "resourceGroup"));
        assert!(!is_builtin(None, "frobnicate"));
    }
}
