//! Schemas of the fields whose JSON the CRD keeps as written (template, parameters,
//! outputs, drifted values), beside the ones schemars derives.

use schemars::{Schema, SchemaGenerator, json_schema};

/// Map of names to arbitrary JSON values (template parameters and outputs).
pub(crate) fn json_value_map_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": { "x-kubernetes-preserve-unknown-fields": true }
    })
}

/// Any JSON value (a property value in a drift report).
pub(crate) fn any_json_value_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}

/// An inline ARM template: any JSON object, kept as written.
pub(crate) fn arm_template_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}
