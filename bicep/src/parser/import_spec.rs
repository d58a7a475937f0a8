//! Grammar of an `import` declaration's `{...}` or `* as ns` part and path.

use super::*;

/// The `{...}` or `* as ns` part and the path of an `import` declaration's tokens.
pub(super) fn import_spec(toks: &[Token]) -> Option<ImportSpec> {
    // Items are separated by commas or new lines, which carry no other meaning here.
    let mut it = toks
        .iter()
        .map(|t| &t.tok)
        .filter(|t| **t != Tok::NewLine)
        .peekable();
    let mut items = Vec::new();
    let mut wildcard = None;
    match it.next()? {
        Tok::LBrace => loop {
            let name = match it.next()? {
                Tok::RBrace => break,
                Tok::Comma => continue,
                Tok::Ident(n) => n.clone(),
                Tok::Str { pieces, holes } if holes.is_empty() => pieces[0].clone(),
                _ => return None,
            };
            let mut alias = None;
            if matches!(it.peek(), Some(Tok::Ident(a)) if a == "as") {
                it.next();
                let Tok::Ident(a) = it.next()? else {
                    return None;
                };
                alias = Some(a.clone());
            }
            items.push((name, alias));
        },
        Tok::Star => {
            let (Tok::Ident(as_kw), Tok::Ident(ns)) = (it.next()?, it.next()?) else {
                return None;
            };
            if as_kw != "as" {
                return None;
            }
            wildcard = Some(ns.clone());
        }
        _ => return None,
    }
    let (Tok::Ident(from), Tok::Str { pieces, holes }) = (it.next()?, it.next()?) else {
        return None;
    };
    if from != "from" || !holes.is_empty() || it.next().is_some() {
        return None;
    }
    Some(ImportSpec {
        items,
        wildcard,
        path: pieces[0].clone(),
    })
}
