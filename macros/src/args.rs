//! Parsing `#[observe(..)]`'s arguments. Every key is accepted here, known or
//! not, so that `valid` can point at an unknown one with a useful message
//! instead of syn's generic "expected ..".

use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{parenthesized, token, Expr, Ident, Token};

pub(crate) struct Args {
    pub items: Vec<Arg>,
}

pub(crate) struct Arg {
    pub key: Ident,
    pub value: Value,
}

pub(crate) enum Value {
    /// `skip_all`
    Flag,
    /// `pool = expr`
    Assign(Expr),
    /// `skip(a, b)`
    List(token::Paren, Punctuated<Expr, Token![,]>),
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut items = Vec::new();
        while !input.is_empty() {
            let key = input.call(Ident::parse_any)?;
            let value = if input.peek(Token![=]) {
                input.parse::<Token![=]>()?;
                Value::Assign(input.parse()?)
            } else if input.peek(token::Paren) {
                let content;
                let paren = parenthesized!(content in input);
                Value::List(paren, content.parse_terminated(Expr::parse, Token![,])?)
            } else {
                Value::Flag
            };
            items.push(Arg { key, value });
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(Args { items })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    #[test]
    fn parses_every_shape() {
        let args: Args = parse_quote!(name = "x", skip(a, b), skip_all, pool = self.pool,);
        let keys: Vec<String> = args.items.iter().map(|a| a.key.to_string()).collect();
        assert_eq!(keys, ["name", "skip", "skip_all", "pool"]);
        assert!(matches!(args.items[1].value, Value::List(_, ref l) if l.len() == 2));
        assert!(matches!(args.items[2].value, Value::Flag));
    }

    #[test]
    fn keywords_parse_as_keys() {
        let args: Args = parse_quote!(type = 1);
        assert_eq!(args.items[0].key, "type");
    }

    #[test]
    fn missing_comma_is_an_error() {
        assert!(syn::parse2::<Args>(quote::quote!(name = "x" pool = 1)).is_err());
    }
}
