//! Every rule `#[observe]` enforces, each reported at the offending token.
//! Problems are collected and combined so the user sees all of them at once.

use std::collections::BTreeSet;

use proc_macro2::TokenStream;
use syn::spanned::Spanned;
use syn::{Error, Expr, ExprLit, FnArg, Ident, ItemFn, Lit, LitStr, Pat, ReturnType};

use crate::args::{Arg, Args, Value};

const KEYS: &str =
    "`name`, `kind`, `pool`, `command`, `worker`, `correlation`, `size`, `ttl`, `skip`, `skip_all`, `labels`";
const KEY_NAMES: [&str; 11] = [
    "labels",
    "name",
    "kind",
    "pool",
    "command",
    "worker",
    "correlation",
    "size",
    "ttl",
    "skip",
    "skip_all",
];
const KINDS: &str = "`request`, `pool_start`, `worker_start`, `session_create`";
const KIND_NAMES: [&str; 4] = ["request", "pool_start", "worker_start", "session_create"];

/// ` (did you mean `x`?)` for the closest candidate within two edits.
fn suggestion(given: &str, candidates: &[&str]) -> String {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let cost = usize::from(ca != *cb);
                let next = (row[j + 1] + 1).min(row[j] + 1).min(prev + cost);
                prev = row[j + 1];
                row[j + 1] = next;
            }
        }
        row[b.len()]
    }
    candidates
        .iter()
        .map(|c| (distance(given, c), c))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, c)| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Request,
    PoolStart,
    WorkerStart,
    SessionCreate,
}

impl Kind {
    fn parse(name: &str) -> Option<Kind> {
        Some(match name {
            "request" => Kind::Request,
            "pool_start" => Kind::PoolStart,
            "worker_start" => Kind::WorkerStart,
            "session_create" => Kind::SessionCreate,
            _ => return None,
        })
    }

    pub(crate) fn variant(self) -> &'static str {
        match self {
            Kind::Request => "Request",
            Kind::PoolStart => "PoolStart",
            Kind::WorkerStart => "WorkerStart",
            Kind::SessionCreate => "SessionCreate",
        }
    }
}

/// A label value: a literal is resolved once per call site, an expression on
/// every call.
pub(crate) enum LabelValue {
    Literal(LitStr),
    /// A path to a `const` (or `static`) `&str`, named in SCREAMING_CASE as
    /// Rust names constants: read once into the call site's `static`, so it
    /// costs nothing per call, like a literal.
    Const(syn::Path),
    Dynamic(Expr),
}

pub(crate) enum Skip {
    None,
    All,
    Some(BTreeSet<String>),
}

/// The checked arguments and the function they apply to.
pub(crate) struct Spec {
    pub name: Option<LitStr>,
    pub kind: Kind,
    pub pool: Option<LabelValue>,
    pub command: Option<LabelValue>,
    pub worker: Option<Expr>,
    pub correlation: Option<Expr>,
    pub size: Option<Expr>,
    pub ttl: Option<Expr>,
    pub skip: Skip,
    /// `labels(tier = "gold")`: extra static metric labels, name and value.
    pub labels: Vec<(String, LitStr)>,
    pub func: ItemFn,
}

/// Labels poolscope sets itself, or Prometheus reserves.
const RESERVED_LABELS: [&str; 7] = [
    "pool", "command", "outcome", "le", "kind", "state", "quantile",
];
/// Most extra labels on one call site: each multiplies nothing (values are
/// literals), but every one is a column on every line of the series.
const MAX_LABELS: usize = 8;

/// `labels(a = "x", b = "y")`: literal names and values only, so the
/// series a call site adds are known at compile time.
fn labels(
    list: &syn::punctuated::Punctuated<Expr, syn::Token![,]>,
    errors: &mut Errors,
) -> Vec<(String, LitStr)> {
    let mut out: Vec<(String, LitStr)> = Vec::new();
    if list.len() > MAX_LABELS {
        errors.push(Error::new_spanned(
            list,
            format!("`labels` takes at most {MAX_LABELS} labels"),
        ));
    }
    for expr in list {
        let Expr::Assign(assign) = expr else {
            errors.push(Error::new_spanned(
                expr,
                "`labels` takes `name = \"value\"` pairs, e.g. `labels(tier = \"gold\")`",
            ));
            continue;
        };
        let name = match &*assign.left {
            Expr::Path(p) if p.qself.is_none() && p.path.get_ident().is_some() => {
                p.path.get_ident().map(Ident::to_string).unwrap_or_default()
            }
            other => {
                errors.push(Error::new_spanned(
                    other,
                    "a label name is an identifier, e.g. `tier`",
                ));
                continue;
            }
        };
        let value = match &*assign.right {
            Expr::Lit(ExprLit {
                lit: Lit::Str(s), ..
            }) => s.clone(),
            other => {
                errors.push(Error::new_spanned(
                    other,
                    "a label value is a string literal: values known at compile time keep the number of series bounded",
                ));
                continue;
            }
        };
        if RESERVED_LABELS.contains(&name.as_str()) || name.starts_with("__") {
            errors.push(Error::new_spanned(
                &assign.left,
                format!(
                    "`{name}` is a label poolscope or Prometheus sets itself; pick another name"
                ),
            ));
            continue;
        }
        if out.iter().any(|(n, _)| *n == name) {
            errors.push(Error::new_spanned(
                &assign.left,
                format!("label `{name}` is given twice"),
            ));
            continue;
        }
        out.push((name, value));
    }
    out
}

struct Errors(Option<Error>);

impl Errors {
    fn push(&mut self, err: Error) {
        match &mut self.0 {
            Some(all) => all.combine(err),
            None => self.0 = Some(err),
        }
    }
}

pub(crate) fn validate(args: Args, item: TokenStream) -> syn::Result<Spec> {
    let func = parse_fn(item)?;
    let mut errors = Errors(None);
    let params = parameters(&func);

    let mut seen: Vec<Ident> = Vec::new();
    let mut name = None;
    let mut kind = None;
    let mut pool = None;
    let mut command = None;
    let mut worker = None;
    let mut correlation = None;
    let mut size = None;
    let mut ttl = None;
    let mut skip = Skip::None;
    let mut skip_all_key: Option<Ident> = None;
    let mut extra_labels = Vec::new();
    let mut skip_key: Option<Ident> = None;

    for Arg { key, value } in args.items {
        let key_str = key.to_string();
        if let Some(first) = seen.iter().find(|k| **k == key) {
            let mut err = Error::new_spanned(&key, format!("`{key_str}` is given twice: keep one"));
            err.combine(Error::new_spanned(
                first,
                format!("`{key_str}` first given here"),
            ));
            errors.push(err);
            continue;
        }
        seen.push(key.clone());
        match key_str.as_str() {
            "name" => match assign(&key, value) {
                Ok(Expr::Lit(ExprLit { lit: Lit::Str(lit), .. })) if !lit.value().trim().is_empty() => name = Some(lit),
                Ok(Expr::Lit(ExprLit { lit: Lit::Str(lit), .. })) => {
                    errors.push(Error::new_spanned(lit, "`name` must not be empty"))
                }
                Ok(other) => errors.push(Error::new_spanned(
                    other,
                    "`name` must be a string literal, e.g. `name = \"execute\"`",
                )),
                Err(err) => errors.push(err),
            },
            "kind" => match assign(&key, value) {
                Ok(Expr::Path(path)) if path.qself.is_none() && path.path.get_ident().is_some() => {
                    let ident = path.path.get_ident().map(Ident::to_string).unwrap_or_default();
                    match Kind::parse(&ident) {
                        Some(k) => kind = Some((k, key.clone())),
                        None => errors.push(Error::new_spanned(
                            path,
                            format!("`kind` must be one of {KINDS}{}", suggestion(&ident, &KIND_NAMES)),
                        )),
                    }
                }
                Ok(Expr::Lit(ExprLit { lit: Lit::Str(lit), .. })) => errors.push(Error::new_spanned(
                    &lit,
                    format!("`kind` takes a bare name, not a string: write `kind = {}`", lit.value()),
                )),
                Ok(other) => errors.push(Error::new_spanned(other, format!("`kind` must be one of {KINDS}"))),
                Err(err) => errors.push(err),
            },
            "pool" => match assign(&key, value) {
                Ok(expr) => pool = Some((label(expr), key.clone())),
                Err(err) => errors.push(err),
            },
            "command" => match assign(&key, value) {
                Ok(expr) => command = Some((label(expr), key.clone())),
                Err(err) => errors.push(err),
            },
            "worker" => match assign(&key, value) {
                Ok(expr) => worker = Some((expr, key.clone())),
                Err(err) => errors.push(err),
            },
            "correlation" => match assign(&key, value) {
                Ok(expr) => correlation = Some(expr),
                Err(err) => errors.push(err),
            },
            "size" => match assign(&key, value) {
                Ok(expr) => size = Some((expr, key.clone())),
                Err(err) => errors.push(err),
            },
            "ttl" => match assign(&key, value) {
                Ok(expr) => ttl = Some((expr, key.clone())),
                Err(err) => errors.push(err),
            },
            "skip" => match value {
                Value::List(_, list) => {
                    let mut names = BTreeSet::new();
                    for expr in list {
                        match &expr {
                            Expr::Path(p) if p.qself.is_none() && p.path.get_ident().is_some() => {
                                let name = p.path.get_ident().map(Ident::to_string).unwrap_or_default();
                                if name != "self" && !params.contains(&name) {
                                    errors.push(Error::new_spanned(
                                        &expr,
                                        format!(
                                            "`skip` names `{name}`, which is not an argument of `{}`",
                                            func.sig.ident
                                        ),
                                    ));
                                }
                                names.insert(name);
                            }
                            _ => errors.push(Error::new_spanned(
                                &expr,
                                "`skip` takes argument names, e.g. `skip(password, payload)`",
                            )),
                        }
                    }
                    skip = Skip::Some(names);
                    skip_key = Some(key.clone());
                }
                _ => errors.push(Error::new_spanned(
                    &key,
                    "`skip` takes a list of argument names: `skip(a, b)`; to skip every argument write `skip_all`",
                )),
            },
            "labels" => match value {
                Value::List(_, list) => extra_labels = labels(&list, &mut errors),
                _ => errors.push(Error::new_spanned(
                    &key,
                    "`labels` takes a list: `labels(tier = \"gold\", region = \"eu\")`",
                )),
            },
            "skip_all" => match value {
                Value::Flag => skip_all_key = Some(key.clone()),
                Value::Assign(expr) => {
                    errors.push(Error::new_spanned(expr, "`skip_all` takes no value: write `skip_all`"))
                }
                Value::List(paren, _) => {
                    errors.push(Error::new(paren.span.join(), "`skip_all` takes no list: write `skip_all`"))
                }
            },
            _ => errors.push(Error::new_spanned(
                &key,
                format!("unknown argument `{key_str}`{}: expected one of {KEYS}", suggestion(&key_str, &KEY_NAMES)),
            )),
        }
    }

    if let (Some(all), Some(_)) = (&skip_all_key, &skip_key) {
        errors.push(Error::new_spanned(
            all,
            "`skip_all` and `skip(..)` cannot be combined: `skip_all` already skips every argument",
        ));
    }
    if skip_all_key.is_some() {
        skip = Skip::All;
    }

    let kind_value = kind.as_ref().map_or(Kind::Request, |(k, _)| *k);
    let only = |key: &Ident, allowed: &[Kind], what: &str| -> Option<Error> {
        (!allowed.contains(&kind_value))
            .then(|| Error::new_spanned(key, format!("`{key}` only applies to {what}")))
    };
    let misplaced = [
        command
            .as_ref()
            .and_then(|(_, key)| only(key, &[Kind::Request], "`kind = request`")),
        worker.as_ref().and_then(|(_, key)| {
            only(
                key,
                &[Kind::Request, Kind::WorkerStart],
                "`kind = request` and `kind = worker_start`",
            )
        }),
        size.as_ref()
            .and_then(|(_, key)| only(key, &[Kind::PoolStart], "`kind = pool_start`")),
        ttl.as_ref()
            .and_then(|(_, key)| only(key, &[Kind::SessionCreate], "`kind = session_create`")),
    ];
    misplaced
        .into_iter()
        .flatten()
        .for_each(|err| errors.push(err));

    if let Some(err) = errors.0 {
        return Err(err);
    }
    Ok(Spec {
        name,
        kind: kind_value,
        pool: pool.map(|(v, _)| v),
        command: command.map(|(v, _)| v),
        worker: worker.map(|(v, _)| v),
        correlation,
        size: size.map(|(v, _)| v),
        ttl: ttl.map(|(v, _)| v),
        skip,
        labels: extra_labels,
        func,
    })
}

fn assign(key: &Ident, value: Value) -> syn::Result<Expr> {
    match value {
        Value::Assign(expr) => Ok(expr),
        Value::Flag | Value::List(..) => Err(Error::new_spanned(
            key,
            format!("`{key}` needs a value: `{key} = ..`"),
        )),
    }
}

fn label(expr: Expr) -> LabelValue {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => LabelValue::Literal(lit),
        Expr::Path(path) if path.qself.is_none() && names_a_constant(&path.path) => {
            LabelValue::Const(path.path)
        }
        other => LabelValue::Dynamic(other),
    }
}

/// `POOL`, `crate::pools::PYTHON`: a path without generics whose last
/// segment is in SCREAMING_CASE.
fn names_a_constant(path: &syn::Path) -> bool {
    let Some(last) = path.segments.last() else {
        return false;
    };
    let name = last.ident.to_string();
    path.segments
        .iter()
        .all(|s| matches!(s.arguments, syn::PathArguments::None))
        && name.chars().any(|c| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

fn parse_fn(item: TokenStream) -> syn::Result<ItemFn> {
    if let Ok(func) = syn::parse2::<ItemFn>(item.clone()) {
        if let Some(constness) = &func.sig.constness {
            return Err(Error::new_spanned(
                constness,
                "`#[observe]` cannot be applied to a `const fn`: it may run at compile time, where nothing can be observed",
            ));
        }
        return Ok(func);
    }
    if let Ok(decl) = syn::parse2::<syn::TraitItemFn>(item.clone()) {
        return Err(Error::new_spanned(
            &decl.sig,
            "`#[observe]` needs a function body: put it on the implementation, not on the trait's declaration",
        ));
    }
    let first = item
        .into_iter()
        .find(|tt| !matches!(tt, proc_macro2::TokenTree::Punct(p) if p.as_char() == '#'));
    let span = first
        .as_ref()
        .map_or_else(proc_macro2::Span::call_site, Spanned::span);
    Err(Error::new(
        span,
        "`#[observe]` can only be applied to functions and methods",
    ))
}

/// The names bound by the function's parameters (not `self`).
pub(crate) fn parameters(func: &ItemFn) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for input in &func.sig.inputs {
        if let FnArg::Typed(typed) = input {
            collect(&typed.pat, &mut |ident| {
                names.insert(ident.to_string());
            });
        }
    }
    names
}

/// Calls `f` with every identifier a pattern binds.
pub(crate) fn collect(pat: &Pat, f: &mut dyn FnMut(&Ident)) {
    match pat {
        Pat::Ident(p) => {
            f(&p.ident);
            if let Some((_, sub)) = &p.subpat {
                collect(sub, f);
            }
        }
        Pat::Reference(p) => collect(&p.pat, f),
        Pat::Tuple(p) => p.elems.iter().for_each(|e| collect(e, f)),
        Pat::TupleStruct(p) => p.elems.iter().for_each(|e| collect(e, f)),
        Pat::Slice(p) => p.elems.iter().for_each(|e| collect(e, f)),
        Pat::Struct(p) => p.fields.iter().for_each(|field| collect(&field.pat, f)),
        Pat::Type(p) => collect(&p.pat, f),
        Pat::Paren(p) => collect(&p.pat, f),
        _ => {}
    }
}

/// The declared return type, if any.
pub(crate) fn return_type(func: &ItemFn) -> Option<&syn::Type> {
    match &func.sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => Some(ty),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn check(args: TokenStream, item: TokenStream) -> Result<Spec, String> {
        syn::parse2::<Args>(args)
            .and_then(|a| validate(a, item))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_a_full_request() {
        let spec = check(
            quote!(
                name = "run",
                pool = "py",
                command = cmd,
                worker = w,
                skip(secret),
                correlation = id
            ),
            quote!(
                fn run(&self, cmd: &str, w: u32, secret: &str, id: &str) {}
            ),
        )
        .ok()
        .unwrap();
        assert_eq!(spec.kind, Kind::Request);
        assert!(matches!(spec.pool, Some(LabelValue::Literal(_))));
        assert!(matches!(spec.command, Some(LabelValue::Dynamic(_))));
    }

    #[test]
    fn constants_are_labels_known_before_the_call() {
        for (expr, constant) in [
            (quote!(POOL), true),
            (quote!(crate::pools::PYTHON_3), true),
            (quote!(pool), false),
            (quote!(self.pool), false),
            (quote!(Pools::Main), false),
            (quote!(_), false),
        ] {
            let text = expr.to_string();
            let expr: Expr = syn::parse2(expr).unwrap();
            assert_eq!(
                matches!(label(expr), LabelValue::Const(_)),
                constant,
                "{text}"
            );
        }
    }

    #[test]
    fn reports_each_problem() {
        let cases = [
            (
                quote!(nmae = "x"),
                "unknown argument `nmae` (did you mean `name`?)",
            ),
            (quote!(zzzzzz = "x"), "unknown argument `zzzzzz`: expected"),
            (quote!(name = 42), "`name` must be a string literal"),
            (quote!(name = ""), "`name` must not be empty"),
            (quote!(kind = requst), "(did you mean `request`?)"),
            (quote!(kind = "request"), "write `kind = request`"),
            (quote!(pool), "`pool` needs a value"),
            (
                quote!(skip(nope)),
                "`skip` names `nope`, which is not an argument of `f`",
            ),
            (quote!(skip = a), "`skip` takes a list"),
            (quote!(skip(a.b)), "`skip` takes argument names"),
            (quote!(skip_all = true), "`skip_all` takes no value"),
            (quote!(skip_all, skip(a)), "cannot be combined"),
            (quote!(pool = "a", pool = "b"), "`pool` is given twice"),
            (
                quote!(kind = pool_start, command = "x"),
                "`command` only applies to `kind = request`",
            ),
            (
                quote!(size = 3),
                "`size` only applies to `kind = pool_start`",
            ),
            (
                quote!(ttl = t),
                "`ttl` only applies to `kind = session_create`",
            ),
        ];
        for (args, expected) in cases {
            let err = check(
                args.clone(),
                quote!(
                    fn f(a: u8) {}
                ),
            )
            .err()
            .unwrap_or_default();
            assert!(
                err.contains(expected),
                "{args}: got `{err}`, expected `{expected}`"
            );
        }
    }

    #[test]
    fn rejects_what_is_not_an_observable_function() {
        let cases = [
            (
                quote!(
                    struct S;
                ),
                "can only be applied to functions",
            ),
            (
                quote!(
                    const fn f() {}
                ),
                "cannot be applied to a `const fn`",
            ),
            (
                quote!(
                    fn f(&self);
                ),
                "needs a function body",
            ),
        ];
        for (item, expected) in cases {
            let err = check(quote!(), item.clone()).err().unwrap_or_default();
            assert!(err.contains(expected), "{item}: got `{err}`");
        }
    }

    #[test]
    fn collects_every_bound_name() {
        let func: ItemFn = syn::parse_quote!(
            fn f(&self, (a, mut b): (u8, u8), S { c, d: e }: S, [f, ..]: [u8; 2], _: u8) {}
        );
        let names: Vec<String> = parameters(&func).into_iter().collect();
        assert_eq!(names, ["a", "b", "c", "e", "f"]);
    }
}
