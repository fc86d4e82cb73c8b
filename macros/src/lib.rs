//! The `#[observe]` attribute of poolscope. Use it through the `poolscope`
//! crate, which re-exports it and forwards the aspect features.
//!
//! Three steps in three files: `args` parses the attribute's arguments,
//! `valid` checks them against the function, `expand` generates code and
//! cannot fail. Which aspects to generate is decided here, at this crate's
//! compile time (`cfg!(feature = ..)`), never by a `#[cfg]` in the output,
//! which would test the features of the user's crate.

#![warn(missing_docs)]

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;

mod args;
mod expand;
mod valid;

/// The aspects compiled into this build of the macro.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Aspects {
    pub timing: bool,
    pub correlation: bool,
    pub errors: bool,
}

impl Aspects {
    const COMPILED: Aspects = Aspects {
        timing: cfg!(feature = "timing"),
        correlation: cfg!(feature = "correlation"),
        errors: cfg!(feature = "errors"),
    };

    fn any(self) -> bool {
        self.timing || self.correlation || self.errors
    }
}

/// Observes a pool or worker function: timing, outcome, correlation id and
/// error capture, as the `timing`, `correlation` and `errors` features of
/// `poolscope` select. With none of them on, the function is returned with
/// its machine code untouched: the attribute's arguments are validated and
/// its argument expressions type-checked in a block that never runs (and
/// that the compiler removes), so a typo is an error in every build.
///
/// Arguments: `name = "..."`, `kind = request | pool_start | worker_start |
/// session_create`, `pool = <expr>`, `command = <expr>`, `worker = <expr>`,
/// `correlation = <expr>`, `size = <expr>` (pool_start), `ttl = <expr>`
/// (session_create), `skip(a, b)`, `skip_all`. See the `poolscope` crate
/// documentation for each.
#[proc_macro_attribute]
pub fn observe(args: TokenStream, item: TokenStream) -> TokenStream {
    observe_impl(args.into(), item.into(), Aspects::COMPILED).into()
}

fn observe_impl(args: TokenStream2, item: TokenStream2, aspects: Aspects) -> TokenStream2 {
    match syn::parse2::<args::Args>(args).and_then(|args| valid::validate(args, item.clone())) {
        // The original item goes out with the error, so the user sees this
        // error and not a cascade of "cannot find function" after it.
        Err(err) => {
            let mut out = err.to_compile_error();
            out.extend(item);
            out
        }
        Ok(spec) if !aspects.any() => match expand::checks_only(&spec) {
            None => item,
            Some(checks) => {
                let mut func = spec.func;
                func.block.stmts.insert(0, checks);
                quote::ToTokens::into_token_stream(func)
            }
        },
        Ok(spec) => expand::expand(spec, aspects),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    const NONE: Aspects = Aspects {
        timing: false,
        correlation: false,
        errors: false,
    };
    const ALL: Aspects = Aspects {
        timing: true,
        correlation: true,
        errors: true,
    };

    fn representative() -> Vec<(TokenStream2, TokenStream2)> {
        vec![
            (
                quote!(),
                quote!(
                    fn plain(x: u64) -> u64 {
                        x + 1
                    }
                ),
            ),
            (
                quote!(name = "exec", pool = "py", command = "echo"),
                quote!(
                    pub fn exec(cmd: &str) -> Result<String, std::io::Error> {
                        Ok(cmd.to_owned())
                    }
                ),
            ),
            (
                quote!(skip(secret), pool = self.pool),
                quote!(
                    fn method(&self, secret: String, n: u32) -> u32 {
                        n
                    }
                ),
            ),
            (
                quote!(kind = worker_start, worker = id),
                quote!(
                    async fn spawn(id: u32) -> std::io::Result<()> {
                        Ok(())
                    }
                ),
            ),
            (
                quote!(skip_all, correlation = header),
                quote!(
                    fn generic<T: Clone>(header: &str, t: &T) -> T
                    where
                        T: Send,
                    {
                        t.clone()
                    }
                ),
            ),
            (
                quote!(kind = pool_start, size = n),
                quote!(
                    #[inline]
                    fn start(n: usize) -> impl std::future::Future<Output = ()> {
                        async {}
                    }
                ),
            ),
            (
                quote!(
                    kind = session_create,
                    ttl = std::time::Duration::from_secs(1)
                ),
                quote!(
                    #[doc = "d"]
                    unsafe extern "C" fn session() {}
                ),
            ),
        ]
    }

    #[test]
    fn without_aspects_a_literal_only_item_comes_back_token_for_token() {
        for (args, item) in representative().into_iter().take(2) {
            let out = observe_impl(args, item.clone(), NONE);
            assert_eq!(out.to_string(), item.to_string());
        }
    }

    /// The machine code stays the plain function's (the assembly and
    /// callgrind checks prove that); the tokens gain one block that never
    /// runs, holding the argument expressions, first in the body.
    #[test]
    fn without_aspects_argument_expressions_are_checked_in_dead_code() {
        for (args, item) in representative().into_iter().skip(2) {
            let out = observe_impl(args, item.clone(), NONE);
            let mut got: syn::ItemFn = syn::parse2(out).unwrap();
            let first = got.block.stmts.remove(0);
            let first = quote!(#first).to_string();
            assert!(first.contains("if false"), "{first}");
            assert!(!first.contains("__private"), "{first}");
            let want: syn::ItemFn = syn::parse2(item).unwrap();
            assert_eq!(quote!(#got).to_string(), quote!(#want).to_string());
        }
    }

    #[test]
    fn with_aspects_the_item_is_instrumented() {
        for (args, item) in representative() {
            let out = observe_impl(args, item, ALL).to_string();
            assert!(out.contains("__POOLSCOPE_SITE"), "{out}");
            assert!(!out.contains("compile_error"), "{out}");
        }
    }

    /// A constant goes into the call site's `static`, like a literal: no
    /// per-call label.
    #[test]
    fn a_constant_pool_is_resolved_once_not_per_call() {
        let item = quote!(
            fn run(x: u32) -> u32 {
                x
            }
        );
        let constant = observe_impl(quote!(pool = POOL), item.clone(), ALL).to_string();
        assert!(
            constant.contains("Option :: Some (POOL)"),
            "in the static: {constant}"
        );
        assert!(!constant.contains("as_label"), "{constant}");
        let dynamic = observe_impl(quote!(pool = pool_name), item, ALL).to_string();
        assert!(dynamic.contains("as_label"), "per call: {dynamic}");
    }

    #[test]
    fn the_build_without_aspects_still_validates() {
        let out = observe_impl(
            quote!(kind = requets),
            quote!(
                fn f() {}
            ),
            NONE,
        )
        .to_string();
        assert!(out.contains("compile_error"), "{out}");
        assert!(
            out.contains("fn f"),
            "the item is kept after the error: {out}"
        );
    }

    #[test]
    fn the_compiled_aspects_follow_the_features() {
        assert_eq!(Aspects::COMPILED.timing, cfg!(feature = "timing"));
        assert_eq!(Aspects::COMPILED.any(), cfg!(feature = "aspects"));
    }
}
