//! Code generation. Everything that can be wrong was rejected by `valid`, so
//! nothing here fails. Generated code names only `::poolscope::__private`,
//! prefixes its locals with `__poolscope_`, and carries its own lint allows.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{
    Attribute, Block, Expr, FnArg, GenericArgument, PathArguments, Stmt, Type, TypeParamBound,
};

use crate::valid::{collect, LabelValue, Skip, Spec};
use crate::Aspects;

pub(crate) fn expand(spec: Spec, aspects: Aspects) -> TokenStream {
    let site = site(&spec);
    let init = init(&spec, aspects);
    let func = &spec.func;
    let (outer, inner): (Vec<&Attribute>, Vec<&Attribute>) = func
        .attrs
        .iter()
        .partition(|a| matches!(a.style, syn::AttrStyle::Outer));
    let vis = &func.vis;
    let sig = &func.sig;
    let block = &func.block;
    let ret = crate::valid::return_type(func);

    let body = if sig.asyncness.is_some() {
        let fake = fake_return(ret);
        async_body(quote!(async move { #fake #block }), &init)
    } else if let Some((prefix, inner_block, output)) = async_trait_body(block, ret) {
        // async-trait has already turned `async fn` into a fn returning
        // `Box::pin(async move { .. })`: observe the inner future, which is
        // where the body runs.
        let fake = fake_return(output);
        let observed = async_body(quote!(async move { #fake #inner_block }), &init);
        quote! {
            #(#prefix)*
            ::std::boxed::Box::pin(async move { #observed })
        }
    } else if ret.is_some_and(returns_impl_future) {
        let observe = finish();
        quote! {
            let __poolscope_call = ::poolscope::__private::Call::enter_async(&__POOLSCOPE_SITE, #init);
            #[allow(clippy::redundant_closure_call)]
            let __poolscope_future = ::poolscope::__private::call_once(move || #block);
            async move {
                let (__poolscope_ret, mut __poolscope_call) =
                    ::poolscope::__private::Observed::new(__poolscope_call, __poolscope_future).await;
                #observe
                __poolscope_ret
            }
        }
    } else {
        // The annotation pins the return type before the classification's
        // method lookup sees it; a body that only panics would otherwise
        // leave it to inference.
        let annotation = match ret {
            None => Some(quote!(: ())),
            Some(ty) if !contains_impl_trait(ty) => Some(quote_spanned!(ty.span()=> : #ty)),
            Some(_) => None,
        };
        let observe = finish();
        // The body is called on two paths: alone when recording is off, so
        // that path is the plain function and needs no stack frame of its
        // own, and between `enter` and `finish` otherwise.
        quote! {
            let mut __poolscope_call = ::poolscope::__private::Call::enter(&__POOLSCOPE_SITE, #init);
            let __poolscope_body = ::poolscope::__private::once(move || #block);
            if !__poolscope_call.is_active() {
                return __poolscope_body();
            }
            let __poolscope_ret #annotation = __poolscope_body();
            #observe
            __poolscope_ret
        }
    };

    quote! {
        #(#outer)*
        #vis #sig {
            #(#inner)*
            #site
            #body
        }
    }
}

/// The per-call-site `static`: name, kind and literal labels, and the lazily
/// resolved metric series.
fn site(spec: &Spec) -> TokenStream {
    let ident = &spec.func.sig.ident;
    let fn_name = ident.to_string();
    let name = match &spec.name {
        Some(lit) => lit.to_token_stream(),
        None => quote!(::core::concat!(::core::module_path!(), "::", #fn_name)),
    };
    let kind = format_ident!("{}", spec.kind.variant());
    let pool = match &spec.pool {
        Some(LabelValue::Literal(lit)) => quote!(::core::option::Option::Some(#lit)),
        Some(LabelValue::Const(path)) => quote!(::core::option::Option::Some(#path)),
        _ => quote!(::core::option::Option::None),
    };
    let command = match &spec.command {
        Some(LabelValue::Literal(lit)) => lit.to_token_stream(),
        Some(LabelValue::Const(path)) => path.to_token_stream(),
        _ => quote!(#fn_name),
    };
    let names = spec.labels.iter().map(|(name, _)| name);
    let values = spec.labels.iter().map(|(_, value)| value);
    quote! {
        static __POOLSCOPE_SITE: ::poolscope::__private::Site = ::poolscope::__private::Site::with_labels(
            #name,
            ::poolscope::__private::Kind::#kind,
            #pool,
            #command,
            &[#((#names, #values)),*],
        );
    }
}

/// The closure that fills in the per-call values. It only runs while
/// recording is on, and formats arguments only when an event will carry them.
fn init(spec: &Spec, aspects: Aspects) -> TokenStream {
    let mut always = TokenStream::new();
    if let Some(LabelValue::Dynamic(expr)) = &spec.pool {
        let label = checked::label(expr);
        always.extend(quote_spanned!(expr.span()=> __poolscope_start.pool(#label);));
    }
    if let Some(LabelValue::Dynamic(expr)) = &spec.command {
        let label = checked::label(expr);
        always.extend(quote_spanned!(expr.span()=> __poolscope_start.command(#label);));
    }
    if let Some(expr) = &spec.correlation {
        let id = checked::correlation(expr);
        if aspects.correlation {
            always.extend(quote_spanned!(expr.span()=> __poolscope_start.correlation(#id);));
        } else {
            // Checked all the same, so the builds accept the same code, but
            // never run: nothing would adopt the id.
            always.extend(quote_spanned!(expr.span()=> if false { let _ = #id; }));
        }
    }

    let mut details = TokenStream::new();
    if let Some(expr) = &spec.size {
        let size = checked::size(expr);
        details.extend(quote_spanned!(expr.span()=> __poolscope_details.size(#size);));
    }
    if let Some(expr) = &spec.ttl {
        let ttl = checked::ttl(expr);
        details.extend(quote_spanned!(expr.span()=> __poolscope_details.ttl(#ttl);));
    }
    if let Some(expr) = &spec.worker {
        let worker = checked::worker(expr);
        details.extend(quote_spanned!(expr.span()=> __poolscope_details.worker(#worker);));
    }
    let mut args = Vec::new();
    if !matches!(spec.skip, Skip::All) {
        for input in &spec.func.sig.inputs {
            if let FnArg::Typed(typed) = input {
                collect(&typed.pat, &mut |ident| {
                    if !matches!(&spec.skip, Skip::Some(names) if names.contains(&ident.to_string()))
                    {
                        args.push(ident.clone());
                    }
                });
            }
        }
    }
    if !args.is_empty() {
        let names = args.iter().map(|a| a.to_string());
        details.extend(quote! {
            #[allow(unused_imports)]
            use ::poolscope::__private::classify::{ArgDebug as _, ArgOpaque as _};
            #(
                __poolscope_details.arg(#names, (&&::poolscope::__private::classify::Arg(&#args)).__poolscope_arg());
            )*
        });
    }
    quote! {
        |__poolscope_start: &mut ::poolscope::__private::Start| {
            #always
        },
        |__poolscope_details: &mut ::poolscope::__private::Details| {
            #details
        }
    }
}

/// The argument expressions, each written as an expression of the type
/// poolscope takes, through public traits only. Both builds use these very
/// expressions — the instrumented one to record, the other in code that
/// never runs — so a wrong name or type is the same error, at the same
/// token, in every build, and no error names poolscope's internals.
mod checked {
    use proc_macro2::TokenStream;
    use quote::quote_spanned;
    use syn::spanned::Spanned;
    use syn::{Expr, Path};

    /// A `Label`.
    pub(crate) fn label(expr: &Expr) -> TokenStream {
        quote_spanned!(expr.span()=> ::poolscope::label::AsLabel::as_label(&(#expr)))
    }

    /// An `Option<CorrelationId>`.
    pub(crate) fn correlation(expr: &Expr) -> TokenStream {
        quote_spanned!(expr.span()=> ::poolscope::correlation::IntoCorrelation::into_correlation(#expr))
    }

    /// An `Option<u64>`.
    pub(crate) fn size(expr: &Expr) -> TokenStream {
        quote_spanned!(expr.span()=> ::core::result::Result::ok(::core::convert::TryInto::<u64>::try_into(#expr)))
    }

    /// A `Duration`.
    pub(crate) fn ttl(expr: &Expr) -> TokenStream {
        quote_spanned!(expr.span()=> {
            let __poolscope_ttl: ::core::time::Duration = #expr;
            __poolscope_ttl
        })
    }

    /// A `&dyn Display` (a cast, so that a temporary lives to the end of
    /// the statement).
    pub(crate) fn worker(expr: &Expr) -> TokenStream {
        quote_spanned!(expr.span()=> (&(#expr) as &dyn ::core::fmt::Display))
    }

    /// A `&'static str` constant (it went into the call site's `static`;
    /// this is only for the build that has none).
    pub(crate) fn constant(path: &Path) -> TokenStream {
        quote_spanned!(path.span()=> let _: &'static str = #path;)
    }
}

/// What the build without aspects adds to a function whose arguments name
/// expressions: those expressions, checked as the instrumented build checks
/// them, in a block that never runs. The compiler removes it before code
/// generation, so the function's machine code is the plain function's; but
/// a misspelt variable is an error and a variable used only there is used.
/// `None` when every argument is a literal: the function then comes back
/// token for token.
pub(crate) fn checks_only(spec: &Spec) -> Option<syn::Stmt> {
    let mut checks = TokenStream::new();
    for label in [&spec.pool, &spec.command] {
        match label {
            Some(LabelValue::Dynamic(expr)) => {
                let label = checked::label(expr);
                checks.extend(quote_spanned!(expr.span()=> let _ = #label;));
            }
            Some(LabelValue::Const(path)) => checks.extend(checked::constant(path)),
            _ => {}
        }
    }
    if let Some(expr) = &spec.correlation {
        let id = checked::correlation(expr);
        checks.extend(quote_spanned!(expr.span()=> let _ = #id;));
    }
    if let Some(expr) = &spec.size {
        let size = checked::size(expr);
        checks.extend(quote_spanned!(expr.span()=> let _ = #size;));
    }
    if let Some(expr) = &spec.ttl {
        let ttl = checked::ttl(expr);
        checks.extend(quote_spanned!(expr.span()=> let _ = #ttl;));
    }
    if let Some(expr) = &spec.worker {
        let worker = checked::worker(expr);
        checks.extend(quote_spanned!(expr.span()=> let _ = #worker;));
    }
    if checks.is_empty() {
        return None;
    }
    Some(syn::parse_quote! {
        #[allow(unreachable_code, clippy::diverging_sub_expression)]
        if false {
            #checks
        }
    })
}

/// Reads the outcome off `__poolscope_ret` and completes the call.
fn finish() -> TokenStream {
    quote! {
        #[allow(clippy::needless_borrow)]
        if __poolscope_call.is_active() {
            #[allow(unused_imports)]
            use ::poolscope::__private::classify::{
                ClassifyDebug as _, ClassifyDetails as _, ClassifyDisplay as _, ClassifyError as _, ClassifyOk as _,
                ClassifyOpaque as _,
            };
            __poolscope_call.finish(
                (&&&&&&::poolscope::__private::classify::Ret(&__poolscope_ret)).__poolscope_classify(),
            );
        }
    }
}

/// The body of an observed async call, given the future of the original body.
fn async_body(future: TokenStream, init: &TokenStream) -> TokenStream {
    let observe = finish();
    quote! {
        let __poolscope_call = ::poolscope::__private::Call::enter_async(&__POOLSCOPE_SITE, #init);
        let __poolscope_future = #future;
        let (__poolscope_ret, mut __poolscope_call) =
            ::poolscope::__private::Observed::new(__poolscope_call, __poolscope_future).await;
        #observe
        __poolscope_ret
    }
}

/// tracing's trick: an unreachable `return` of the declared type tells type
/// inference what the async block returns, so `?` inside it works and type
/// errors point at the user's signature.
fn fake_return(ret: Option<&Type>) -> TokenStream {
    match ret {
        Some(ty) if !contains_impl_trait(ty) => quote_spanned! {ty.span()=>
            #[allow(unreachable_code, clippy::diverging_sub_expression, clippy::empty_loop, clippy::needless_return)]
            if false {
                let __poolscope_fake: #ty = loop {};
                return __poolscope_fake;
            }
        },
        Some(_) => TokenStream::new(),
        None => quote! {
            #[allow(unreachable_code, clippy::needless_return)]
            if false {
                return;
            }
        },
    }
}

fn contains_impl_trait(ty: &Type) -> bool {
    struct Finder(bool);
    impl<'ast> Visit<'ast> for Finder {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut finder = Finder(false);
    finder.visit_type(ty);
    finder.0
}

fn returns_impl_future(ty: &Type) -> bool {
    match ty {
        Type::ImplTrait(impl_trait) => impl_trait.bounds.iter().any(|bound| match bound {
            TypeParamBound::Trait(t) => t.path.segments.last().is_some_and(|s| s.ident == "Future"),
            _ => false,
        }),
        Type::Paren(p) => returns_impl_future(&p.elem),
        _ => false,
    }
}

/// Recognises async-trait's expansion: a body ending in
/// `Box::pin(async move { .. })` in a fn returning
/// `Pin<Box<dyn Future<Output = T> + ..>>`. Returns the statements before it,
/// the async block's body, and `T`.
fn async_trait_body<'a>(
    block: &'a Block,
    ret: Option<&'a Type>,
) -> Option<(Vec<&'a Stmt>, &'a Block, Option<&'a Type>)> {
    let output = pinned_future_output(ret?)?;
    let (last, prefix) = block.stmts.split_last()?;
    let Stmt::Expr(Expr::Call(call), None) = last else {
        return None;
    };
    let Expr::Path(func) = &*call.func else {
        return None;
    };
    let segments: Vec<String> = func
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    if segments.len() < 2
        || segments[segments.len() - 2..] != ["Box", "pin"]
        || call.args.len() != 1
    {
        return None;
    }
    let Some(Expr::Async(inner)) = call.args.first() else {
        return None;
    };
    inner.capture?;
    Some((prefix.iter().collect(), &inner.block, output))
}

/// `T` of `Pin<Box<dyn Future<Output = T> + ..>>`; `Some(None)` when the
/// output is `()` written implicitly is not possible here, so `None` means
/// "not this shape".
fn pinned_future_output(ty: &Type) -> Option<Option<&Type>> {
    let Type::Path(pin) = ty else { return None };
    let pin_seg = pin.path.segments.last().filter(|s| s.ident == "Pin")?;
    let boxed = single_type_arg(&pin_seg.arguments)?;
    let Type::Path(boxed) = boxed else {
        return None;
    };
    let box_seg = boxed.path.segments.last().filter(|s| s.ident == "Box")?;
    let Type::TraitObject(object) = single_type_arg(&box_seg.arguments)? else {
        return None;
    };
    object.bounds.iter().find_map(|bound| {
        let TypeParamBound::Trait(t) = bound else {
            return None;
        };
        let seg = t.path.segments.last().filter(|s| s.ident == "Future")?;
        let PathArguments::AngleBracketed(args) = &seg.arguments else {
            return None;
        };
        args.args.iter().find_map(|arg| match arg {
            GenericArgument::AssocType(assoc) if assoc.ident == "Output" => Some(Some(&assoc.ty)),
            _ => None,
        })
    })
}

fn single_type_arg(args: &PathArguments) -> Option<&Type> {
    let PathArguments::AngleBracketed(args) = args else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    #[test]
    fn finds_impl_trait_anywhere_in_a_type() {
        assert!(contains_impl_trait(&parse_quote!(Vec<impl Send>)));
        assert!(!contains_impl_trait(&parse_quote!(
            Result<&'static str, Box<dyn std::error::Error>>
        )));
    }

    #[test]
    fn recognises_impl_future_returns() {
        assert!(returns_impl_future(&parse_quote!(
            impl std::future::Future<Output = u8> + Send
        )));
        assert!(!returns_impl_future(&parse_quote!(
            impl Iterator<Item = u8>
        )));
    }

    #[test]
    fn recognises_the_async_trait_shape() {
        let block: Block = parse_quote!({
            Box::pin(async move {
                let __ret: u8 = { 1 };
                __ret
            })
        });
        let ret: Type = parse_quote!(
            ::core::pin::Pin<
                Box<dyn ::core::future::Future<Output = u8> + ::core::marker::Send + 'async_trait>,
            >
        );
        let (prefix, _, output) = async_trait_body(&block, Some(&ret)).unwrap();
        assert!(prefix.is_empty());
        assert_eq!(output.unwrap().to_token_stream().to_string(), "u8");
        let not_async: Block = parse_quote!({ Box::pin(std::future::ready(1)) });
        assert!(async_trait_body(&not_async, Some(&ret)).is_none());
    }
}
