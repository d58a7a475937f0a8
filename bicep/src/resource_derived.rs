//! Resource-derived types: `resourceInput<'T@v'>.name`, `resourceOutput<'T@v'>.properties.x`.
//!
//! The official compiler (Azure/bicep `src/Bicep.Core/Emit/TemplateWriter.cs`,
//! `ResourceDerivedTypeResolution`) emits such a type as the ARM type of the pointed-at
//! property (`string`, `int`, `bool`, `object`, `array`; nothing when the property is
//! `any`) plus `metadata.__bicep_resource_derived_type!` = `{"source": "T@v#<pointer>"}`
//! (with `"output": true` for `resourceOutput`). The pointer is a JSON pointer into the
//! resource body schema: `.p` is `properties/p`, `.*` `additionalProperties`, `[*]`
//! `items`, `[n]` `prefixItems/n`; the body itself cannot be the type (BCP394).
//!
//! The ARM type comes from type facts, in this order:
//! 1. [`generic_body`]: the body every resource type has. The official compiler gives
//!    exactly this body to a type its library does not know (`AzResourceTypeProvider.
//!    CreateResourceProperties` / `KnownTopLevelResourceProperties`): `name` is a
//!    string, `tags` a dictionary of strings, `properties` an object, `sku.capacity` an
//!    int, and so on. Library types agree on these members.
//! 2. [`KNOWN`]: a few `properties` schemas of specific `type@apiVersion`s, transcribed
//!    from the generated type docs of the official type library
//!    (Azure/bicep-types-az `generated/<provider>/<namespace>/<version>/types.md`,
//!    which are generated from the Azure REST API specs).
//! 3. Anything else is [`Shape::Unknown`]: the definition gets no `type`, only the
//!    metadata, as the official compiler emits for a property typed `any` (for
//!    instance `.properties.*` of a type its library does not know). The value is
//!    then unconstrained by ARM, never wrongly constrained.
//!
//! Accessing a member of something the facts know to be a string, int or bool is the
//! official compiler's error (BCP055/BCP388/BCP389/BCP390) for every resource type.

use crate::ast::TypeAccess;
use crate::diag::{Diagnostic, Span};

/// What the facts say about one place in a resource body.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    String,
    Int,
    Bool,
    /// An object with these members (names compare case-insensitively, as in the
    /// official compiler) and, for `.*`, this additional-properties shape. Members not
    /// listed are [`Shape::Unknown`]: a library type may have more than the facts list.
    Object {
        members: &'static Members,
        additional: Option<&'static Shape>,
    },
    Array(&'static Shape),
    /// `any` in the official type, or not covered by the facts.
    Unknown,
}

impl Shape {
    /// The ARM `type` of a definition of this shape; `None` for an unconstrained one.
    pub fn arm_type(self) -> Option<&'static str> {
        match self {
            Shape::String => Some("string"),
            Shape::Int => Some("int"),
            Shape::Bool => Some("bool"),
            Shape::Object { .. } => Some("object"),
            Shape::Array(_) => Some("array"),
            Shape::Unknown => None,
        }
    }
}

/// An object's members by name.
type Members = [(&'static str, Shape)];

const fn object(members: &'static Members) -> Shape {
    Shape::Object {
        members,
        additional: None,
    }
}

const fn dictionary(of: &'static Shape) -> Shape {
    Shape::Object {
        members: &[],
        additional: Some(of),
    }
}

const STRINGS: Shape = Shape::Array(&Shape::String);
const ANY_OBJECT: Shape = dictionary(&Shape::Unknown);
const TAGS: Shape = dictionary(&Shape::String);

/// The resource body every type has (official: `AzResourceTypeProvider`).
const GENERIC: [(&str, Shape); 19] = [
    ("id", Shape::String),
    ("name", Shape::String),
    ("type", Shape::String),
    ("apiVersion", Shape::String),
    ("location", Shape::String),
    ("tags", TAGS),
    ("asserts", dictionary(&Shape::Bool)),
    ("properties", ANY_OBJECT),
    (
        "sku",
        object(&[
            ("name", Shape::String),
            ("tier", Shape::String),
            ("size", Shape::String),
            ("family", Shape::String),
            ("model", Shape::String),
            ("capacity", Shape::Int),
        ]),
    ),
    ("kind", Shape::String),
    ("managedBy", Shape::String),
    ("managedByExtended", STRINGS),
    (
        "extendedLocation",
        object(&[("type", Shape::String), ("name", Shape::String)]),
    ),
    ("zones", STRINGS),
    (
        "placement",
        object(&[
            ("zonePlacementPolicy", Shape::String),
            ("includeZones", STRINGS),
            ("excludeZones", STRINGS),
        ]),
    ),
    ("plan", ANY_OBJECT),
    ("eTag", Shape::String),
    (
        "scale",
        object(&[
            ("capacity", Shape::Int),
            ("maximum", Shape::Int),
            ("minimum", Shape::Int),
        ]),
    ),
    (
        "identity",
        object(&[
            ("principalId", Shape::String),
            ("tenantId", Shape::String),
            ("type", Shape::String),
            ("identityIds", STRINGS),
            (
                "userAssignedIdentities",
                dictionary(&object(&[
                    ("principalId", Shape::String),
                    ("clientId", Shape::String),
                ])),
            ),
            ("delegatedResources", ANY_OBJECT),
        ]),
    ),
];

/// Index of `properties` in [`GENERIC`].
const PROPERTIES: usize = 7;

/// The generic body with a known `properties` schema.
const fn generic_body(properties: Shape) -> [(&'static str, Shape); 19] {
    let mut body = GENERIC;
    body[PROPERTIES].1 = properties;
    body
}

/// `Microsoft.KeyVault/vaults@2022-07-01` `VaultProperties`
/// (bicep-types-az `generated/keyvault/microsoft.keyvault/2022-07-01/types.md`).
const KEY_VAULT_2022_07_01: [(&str, Shape); 19] = generic_body(object(&[
    (
        "accessPolicies",
        Shape::Array(&object(&[
            ("applicationId", Shape::String),
            ("objectId", Shape::String),
            (
                "permissions",
                object(&[
                    ("certificates", STRINGS),
                    ("keys", STRINGS),
                    ("secrets", STRINGS),
                    ("storage", STRINGS),
                ]),
            ),
            ("tenantId", Shape::String),
        ])),
    ),
    ("createMode", Shape::String),
    ("enabledForDeployment", Shape::Bool),
    ("enabledForDiskEncryption", Shape::Bool),
    ("enabledForTemplateDeployment", Shape::Bool),
    ("enablePurgeProtection", Shape::Bool),
    ("enableRbacAuthorization", Shape::Bool),
    ("enableSoftDelete", Shape::Bool),
    ("hsmPoolResourceId", Shape::String),
    (
        "networkAcls",
        object(&[
            ("bypass", Shape::String),
            ("defaultAction", Shape::String),
            (
                "ipRules",
                Shape::Array(&object(&[("value", Shape::String)])),
            ),
            (
                "virtualNetworkRules",
                Shape::Array(&object(&[
                    ("id", Shape::String),
                    ("ignoreMissingVnetServiceEndpoint", Shape::Bool),
                ])),
            ),
        ]),
    ),
    ("provisioningState", Shape::String),
    ("publicNetworkAccess", Shape::String),
    (
        "sku",
        object(&[("family", Shape::String), ("name", Shape::String)]),
    ),
    ("softDeleteRetentionInDays", Shape::Int),
    ("tenantId", Shape::String),
    ("vaultUri", Shape::String),
]));

/// `Microsoft.Resources/tags@2022-09-01` `Tags`
/// (bicep-types-az `generated/resources/microsoft.resources/2022-09-01/types.md`).
const TAGS_2022_09_01: [(&str, Shape); 19] = generic_body(object(&[("tags", TAGS)]));

/// Bodies known beyond the generic one: `(type, apiVersion)`, compared case-insensitively.
const KNOWN: &[(&str, &str, &Members)] = &[
    (
        "Microsoft.KeyVault/vaults",
        "2022-07-01",
        &KEY_VAULT_2022_07_01,
    ),
    ("Microsoft.Resources/tags", "2022-09-01", &TAGS_2022_09_01),
];

/// The body of `ty@api_version`, as far as the facts know it.
pub fn body(ty: &str, api_version: &str) -> Shape {
    let members = KNOWN
        .iter()
        .find(|(t, v, _)| t.eq_ignore_ascii_case(ty) && v.eq_ignore_ascii_case(api_version))
        .map_or(&GENERIC[..], |(_, _, m)| *m);
    Shape::Object {
        members,
        additional: None,
    }
}

/// The JSON-pointer segments of one access step, RFC 6901-encoded as the official
/// compiler writes them.
pub fn pointer_segments(access: &TypeAccess) -> Vec<String> {
    match access {
        TypeAccess::Property(p) => {
            vec!["properties".into(), p.replace('~', "~0").replace('/', "~1")]
        }
        TypeAccess::AdditionalProperties => vec!["additionalProperties".into()],
        TypeAccess::Items => vec!["items".into()],
        TypeAccess::Index(i) => vec!["prefixItems".into(), i.to_string()],
    }
}

/// The shape one access step leads to from `shape`, or the official compiler's error
/// when `shape` is known to have no such member.
pub fn step(shape: Shape, access: &TypeAccess, span: Span) -> Result<Shape, Diagnostic> {
    let name = match shape {
        Shape::String => "string",
        Shape::Int => "int",
        Shape::Bool => "bool",
        Shape::Array(_) => "array",
        Shape::Object { .. } => "object",
        Shape::Unknown => return Ok(Shape::Unknown),
    };
    match (shape, access) {
        (Shape::Object { members, .. }, TypeAccess::Property(p)) => Ok(members
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(p))
            .map_or(Shape::Unknown, |(_, s)| *s)),
        (Shape::Object { additional, .. }, TypeAccess::AdditionalProperties) => {
            Ok(additional.copied().unwrap_or(Shape::Unknown))
        }
        (Shape::Array(item), TypeAccess::Items) => Ok(*item),
        (_, TypeAccess::Property(_)) => Err(Diagnostic::error(
            "BCP055",
            format!("Cannot access properties of type \"{name}\". An \"object\" type is required."),
            span,
        )),
        (_, TypeAccess::AdditionalProperties) => Err(Diagnostic::error(
            "BCP389",
            format!("The type \"{name}\" does not declare an additional properties type."),
            span,
        )),
        (_, TypeAccess::Items) => Err(Diagnostic::error(
            "BCP390",
            "The array item type access operator ('[*]') can only be used with typed arrays.",
            span,
        )),
        // Resource bodies have no tuples.
        (_, TypeAccess::Index(_)) => Err(Diagnostic::error(
            "BCP388",
            format!(
                "Cannot access elements of type \"{name}\" by index. An tuple type is required."
            ),
            span,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(
        ty: &str,
        version: &str,
        path: &[TypeAccess],
    ) -> Result<Option<&'static str>, String> {
        let span = Span::default();
        let mut shape = body(ty, version);
        for a in path {
            shape = step(shape, a, span).map_err(|d| d.code)?;
        }
        Ok(shape.arm_type())
    }

    fn prop(p: &str) -> TypeAccess {
        TypeAccess::Property(p.into())
    }

    #[test]
    fn every_resource_type_has_the_generic_body() {
        // A type outside the corpus and outside any type library.
        let t = ("Contoso.Widgets/gadgets", "2024-01-01");
        assert_eq!(resolve(t.0, t.1, &[prop("name")]), Ok(Some("string")));
        assert_eq!(resolve(t.0, t.1, &[prop("NAME")]), Ok(Some("string")));
        assert_eq!(resolve(t.0, t.1, &[prop("properties")]), Ok(Some("object")));
        assert_eq!(
            resolve(t.0, t.1, &[prop("tags"), TypeAccess::AdditionalProperties]),
            Ok(Some("string"))
        );
        assert_eq!(
            resolve(t.0, t.1, &[prop("sku"), prop("capacity")]),
            Ok(Some("int"))
        );
        assert_eq!(
            resolve(t.0, t.1, &[prop("zones"), TypeAccess::Items]),
            Ok(Some("string"))
        );
        assert_eq!(
            resolve(
                t.0,
                t.1,
                &[
                    prop("identity"),
                    prop("userAssignedIdentities"),
                    TypeAccess::AdditionalProperties,
                    prop("principalId")
                ]
            ),
            Ok(Some("string"))
        );
    }

    #[test]
    fn pointers_the_facts_do_not_cover_are_unconstrained() {
        let t = ("Contoso.Widgets/gadgets", "2024-01-01");
        assert_eq!(
            resolve(t.0, t.1, &[prop("properties"), prop("size")]),
            Ok(None)
        );
        assert_eq!(
            resolve(
                t.0,
                t.1,
                &[prop("properties"), TypeAccess::AdditionalProperties]
            ),
            Ok(None)
        );
        assert_eq!(resolve(t.0, t.1, &[prop("somethingElse")]), Ok(None));
        // Another version of a type the table knows falls back to the generic body.
        assert_eq!(
            resolve(
                "Microsoft.KeyVault/vaults",
                "2015-06-01",
                &[prop("properties"), prop("tenantId")]
            ),
            Ok(None)
        );
    }

    #[test]
    fn the_table_knows_the_published_schemas() {
        let kv = ("microsoft.keyvault/VAULTS", "2022-07-01");
        let policies = [prop("properties"), prop("accessPolicies")];
        assert_eq!(resolve(kv.0, kv.1, &policies), Ok(Some("array")));
        let items = [
            prop("properties"),
            prop("accessPolicies"),
            TypeAccess::Items,
        ];
        assert_eq!(resolve(kv.0, kv.1, &items), Ok(Some("object")));
        let ip = [
            prop("properties"),
            prop("networkAcls"),
            prop("ipRules"),
            TypeAccess::Items,
            prop("value"),
        ];
        assert_eq!(resolve(kv.0, kv.1, &ip), Ok(Some("string")));
        let retention = [prop("properties"), prop("softDeleteRetentionInDays")];
        assert_eq!(resolve(kv.0, kv.1, &retention), Ok(Some("int")));
        let tags = [
            prop("properties"),
            prop("tags"),
            TypeAccess::AdditionalProperties,
        ];
        assert_eq!(
            resolve("Microsoft.Resources/tags", "2022-09-01", &tags),
            Ok(Some("string"))
        );
    }

    #[test]
    fn members_of_primitives_are_the_official_errors() {
        let t = ("Contoso.Widgets/gadgets", "2024-01-01");
        let name = |a: TypeAccess| resolve(t.0, t.1, &[prop("name"), a]);
        assert_eq!(name(prop("x")), Err("BCP055".into()));
        assert_eq!(name(TypeAccess::AdditionalProperties), Err("BCP389".into()));
        assert_eq!(name(TypeAccess::Items), Err("BCP390".into()));
        assert_eq!(
            resolve(t.0, t.1, &[prop("zones"), TypeAccess::Index(0)]),
            Err("BCP388".into())
        );
    }

    #[test]
    fn known_bodies_replace_only_the_generic_properties() {
        assert_eq!(GENERIC[PROPERTIES].0, "properties");
        let kv = &KEY_VAULT_2022_07_01;
        assert!(kv.iter().zip(&GENERIC).all(|(a, b)| a.0 == b.0));
    }

    #[test]
    fn pointer_segments_are_rfc_6901_encoded() {
        assert_eq!(pointer_segments(&prop("a/b~c")), ["properties", "a~1b~0c"]);
        assert_eq!(
            pointer_segments(&TypeAccess::Index(2)),
            ["prefixItems", "2"]
        );
    }
}
