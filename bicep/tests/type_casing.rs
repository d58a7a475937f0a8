//! Resource types keep the casing they are written with: every sample of the
//! corpus is compiled as written and with the type name of every resource
//! declaration upper-cased, and the two outputs may differ only where they spell
//! those names. With the API versions moved to ones no type library knows, every
//! type must follow the source, in `type`, `resourceId(...)` and everywhere else.
//! At the written API versions the official compiler's own rule applies: a
//! `type@apiVersion` its type library knows takes the library's spelling however
//! it is written ([`bicep::types::library_spelling`]).

mod common;

use std::collections::HashMap;

use bicep::types::library_spelling;
use bicep::{MapResolver, compile_source};
use common::{sample_dirs, text_files};
use serde_json::Value;

/// Upper-cases the type name of every `resource` declaration and returns the new
/// text with the upper-cased names. With `unknown_versions`, API versions move to
/// the 1900s too (`2019-06-01` → `1919-06-01`): no type library knows those, so
/// every type must then keep the casing it is written with; the new versions are
/// returned with the names.
fn upper_case_types(source: &str, unknown_versions: bool) -> (String, Vec<String>) {
    let mut names = Vec::new();
    let mut out = String::with_capacity(source.len());
    for line in source.split_inclusive('\n') {
        let indent = line.len() - line.trim_start().len();
        let rest = &line[indent..];
        let quote = rest
            .strip_prefix("resource ")
            .and_then(|r| r.find('\'').map(|q| indent + "resource ".len() + q));
        let Some(q) = quote else {
            out.push_str(line);
            continue;
        };
        let after = &line[q + 1..];
        // The name ends at `@` or, for a nested child's short type, at the quote.
        let Some(at) = after.find(['@', '\'']) else {
            out.push_str(line);
            continue;
        };
        let upper = after[..at].to_ascii_uppercase();
        out.push_str(&line[..=q]);
        out.push_str(&upper);
        names.push(upper);
        match after[at..].strip_prefix("@20") {
            Some(rest) if unknown_versions => {
                let end = rest.find('\'').unwrap_or(rest.len());
                names.push(format!("19{}", &rest[..end]));
                out.push_str("@19");
                out.push_str(rest);
            }
            _ => out.push_str(&after[at..]),
        }
    }
    (out, names)
}

fn compile(files: &HashMap<String, String>) -> Value {
    let resolver = MapResolver::new(files.clone());
    match compile_source("main.bicep", &files["main.bicep"], &resolver) {
        Ok(t) => t.json,
        Err(d) => panic!("does not compile: {d}"),
    }
}

/// True when `got` differs from `want` only inside occurrences of `names` in `got`.
fn differs_only_in(got: &str, want: &str, names: &[String]) -> bool {
    if got.len() != want.len() {
        return false;
    }
    let mut covered = vec![false; got.len()];
    for n in names {
        for (at, _) in got.match_indices(n.as_str()) {
            covered[at..at + n.len()].iter_mut().for_each(|c| *c = true);
        }
    }
    got.bytes()
        .zip(want.bytes())
        .enumerate()
        .all(|(i, (g, w))| g == w || covered[i])
}

/// The expected spelling of one emitted resource's type after re-casing; objects
/// that only look like resources (data in a property) must stay as they were.
fn check_resource_type(
    got: &Value,
    want: &Value,
    names: &[String],
    path: &str,
    errors: &mut Vec<String>,
) {
    let (Some(g), Some(w), Some(version)) = (
        got["type"].as_str(),
        want["type"].as_str(),
        want["apiVersion"].as_str(),
    ) else {
        return;
    };
    let upper_last = w.rsplit('/').next().unwrap_or("").to_ascii_uppercase();
    let recased = names
        .iter()
        .any(|n| *n == w.to_ascii_uppercase() || *n == upper_last);
    // At the 1900s versions no type library knows any type: all follow the source.
    let known = if got["apiVersion"] == want["apiVersion"] {
        library_spelling(w, version).map(|(t, _)| t)
    } else {
        None
    };
    let ok = match known {
        Some(library) => g == library,
        None if recased => {
            g.eq_ignore_ascii_case(w) && g.rsplit('/').next() == Some(upper_last.as_str())
        }
        None => g == w,
    };
    if !ok {
        errors.push(format!(
            "{path}.type: got {g}, want the spelling of {w}@{version} as re-cased"
        ));
    }
}

fn compare(got: &Value, want: &Value, names: &[String], path: &str, errors: &mut Vec<String>) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            if g.contains_key("type") && g.contains_key("apiVersion") {
                check_resource_type(got, want, names, path, errors);
            }
            for (k, wv) in w {
                // Computed keys (`[resourceId(...)]`) spell type names too.
                let same_key = || {
                    g.iter()
                        .find(|(gk, _)| differs_only_in(gk, k, names))
                        .map(|(_, v)| v)
                };
                match g.get(k).or_else(same_key) {
                    Some(gv) if k == "type" && gv.is_string() => {}
                    Some(gv) => compare(gv, wv, names, &format!("{path}.{k}"), errors),
                    None => errors.push(format!("{path}.{k} missing")),
                }
            }
        }
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => {
            for (i, (gv, wv)) in g.iter().zip(w).enumerate() {
                compare(gv, wv, names, &format!("{path}[{i}]"), errors);
            }
        }
        (Value::String(g), Value::String(w)) => {
            if !differs_only_in(g, w, names) {
                errors.push(format!(
                    "{path}: got {g}, want {w} with re-cased type names"
                ));
            }
        }
        _ if got == want => {}
        _ => errors.push(format!("{path}: got {got}, want {want}")),
    }
}

/// Compiles every sample as written and re-cased; returns the failures and how
/// many type names of main files were re-cased.
fn recased_samples(unknown_versions: bool) -> (Vec<String>, usize) {
    let dirs = sample_dirs();
    assert!(
        !dirs.is_empty(),
        "no samples found (set AZURE_DRIVER_SHARED_DIR)"
    );
    let mut failures = Vec::new();
    let mut recased = 0;
    for dir in &dirs {
        let files = text_files(dir);
        let mut upper = files.clone();
        let mut names = Vec::new();
        for (name, text) in upper.iter_mut().filter(|(n, _)| n.ends_with(".bicep")) {
            let (text2, found) = upper_case_types(text, unknown_versions);
            if name == "main.bicep" {
                recased += found.len();
            }
            *text = text2;
            names.extend(found);
        }
        let mut errors = Vec::new();
        compare(&compile(&upper), &compile(&files), &names, "$", &mut errors);
        if !errors.is_empty() {
            failures.push(format!("{}: {}", dir.display(), errors.join("; ")));
        }
    }
    (failures, recased)
}

#[test]
fn emitted_types_follow_the_casing_of_the_source() {
    let (failures, recased) = recased_samples(true);
    assert!(recased > 100, "only {recased} resource types re-cased");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn types_the_library_knows_take_its_spelling_however_written() {
    let (failures, _) = recased_samples(false);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn upper_casing_touches_only_resource_type_names() {
    let (text, names) = upper_case_types(
        "resource sa 'Microsoft.Storage/storageAccounts@2023-01-01' = {\n  name: 'resource x'\n  resource c 'blobServices' = {}\n  resource d 'x/y@2020-01-01' existing = {}\n}\n",
        false,
    );
    assert_eq!(
        text,
        "resource sa 'MICROSOFT.STORAGE/STORAGEACCOUNTS@2023-01-01' = {\n  name: 'resource x'\n  resource c 'BLOBSERVICES' = {}\n  resource d 'X/Y@2020-01-01' existing = {}\n}\n"
    );
    assert_eq!(
        names,
        ["MICROSOFT.STORAGE/STORAGEACCOUNTS", "BLOBSERVICES", "X/Y"]
    );
}

/// The example: an action group written `microsoft.insights/actionGroups`.
/// The official type library spells `actionGroups@2019-06-01` exactly so, so that
/// spelling stays in `type` and in the `resourceId(...)` other resources read, and
/// written `Microsoft.Insights/...` it takes that spelling too (the emitter writes
/// the type reference the library resolved, `TemplateWriter.EmitResource`). At a
/// version no library knows the author's casing stays, whatever it is.
#[test]
fn action_groups_keep_the_library_spelling_or_the_authors() {
    let template = |ty: &str| {
        let main = format!(
            "resource ag '{ty}' = {{\n  name: 'ag'\n  location: 'global'\n}}\noutput id string = ag.id\n"
        );
        compile(&HashMap::from([("main.bicep".to_string(), main)]))
    };
    let emitted = |json: &Value| {
        (
            json["resources"][0]["type"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            json["outputs"]["id"]["value"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    };
    let library = "microsoft.insights/actionGroups";
    for written in [
        "microsoft.insights/actionGroups",
        "Microsoft.Insights/actionGroups",
    ] {
        let (ty, id) = emitted(&template(&format!("{written}@2019-06-01")));
        assert_eq!(ty, library, "{written}");
        assert_eq!(id, format!("[resourceId('{library}', 'ag')]"), "{written}");
    }
    let (ty, id) = emitted(&template("MICROSOFT.insights/ActionGroups@1999-01-01"));
    assert_eq!(ty, "MICROSOFT.insights/ActionGroups");
    assert_eq!(id, "[resourceId('MICROSOFT.insights/ActionGroups', 'ag')]");
}

/// The library resolves `type@apiVersion` case-insensitively and the emitter writes
/// its reference: a known API version written in upper case takes the library's.
#[test]
fn a_known_api_version_takes_the_library_spelling() {
    let main = "resource apim 'microsoft.apimanagement/SERVICE@2020-06-01-PREVIEW' = {\n  name: 'a'\n  location: 'l'\n}\n";
    let json = compile(&HashMap::from([(
        "main.bicep".to_string(),
        main.to_string(),
    )]));
    assert_eq!(
        json["resources"][0]["type"],
        "Microsoft.ApiManagement/service"
    );
    assert_eq!(json["resources"][0]["apiVersion"], "2020-06-01-preview");
}
