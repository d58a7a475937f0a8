//! Other Rust types for the same Kubernetes kind: a watch cache entry, a reduced decoding.

/// Fills in, inside `impl kube::Resource for T`, everything but `meta` and `meta_mut`:
/// `T` is read and written as an `AzureResource`.
#[macro_export]
macro_rules! azure_resource_kind {
    () => {
        type DynamicType = ();
        type Scope = ::k8s_openapi::NamespaceResourceScope;

        fn kind(dt: &()) -> ::std::borrow::Cow<'_, str> {
            <$crate::AzureResource as ::kube::Resource>::kind(dt)
        }

        fn group(dt: &()) -> ::std::borrow::Cow<'_, str> {
            <$crate::AzureResource as ::kube::Resource>::group(dt)
        }

        fn version(dt: &()) -> ::std::borrow::Cow<'_, str> {
            <$crate::AzureResource as ::kube::Resource>::version(dt)
        }

        fn plural(dt: &()) -> ::std::borrow::Cow<'_, str> {
            <$crate::AzureResource as ::kube::Resource>::plural(dt)
        }
    };
}
