//! Rewrites of progenitor's output, made on its syntax tree (`syn`) before formatting.
//!
//! progenitor has no setting for these two costs, which `cargo xtask bench` measured on every
//! call (see BENCHMARKS.md). They match expressions and statements, never text, so how the
//! formatter lays a call out (a DELETE without a body stays on one line) cannot matter. Each
//! fails generation when what it rewrites is missing, so a progenitor upgrade cannot silently
//! skip it.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, ImplItem, ImplItemFn, Item, Stmt};

/// Path parameters whose hand-written types (`sdk/src/ids.rs`) only hold `[0-9a-f-]`, which
/// percent-encoding leaves unchanged (the sdk's `ids_need_no_percent_encoding` test checks it).
pub const VALIDATED_PATH_IDS: &[&str] = &["environment_id", "wallet_id"];

/// Applies every rewrite to progenitor's tokens.
pub fn apply_all(tokens: TokenStream) -> Result<TokenStream> {
    let mut file: syn::File =
        syn::parse2(tokens).context("progenitor's output does not parse as Rust")?;
    let ops = operation_methods(&mut file).len();
    path_ids_as_str(&mut file, ops)?;
    drop_api_version_header(&mut file)?;
    Ok(file.into_token_stream())
}

/// The operation methods: the `async fn`s of the inherent `impl Client` blocks.
fn operation_methods(file: &mut syn::File) -> Vec<&mut ImplItemFn> {
    file.items
        .iter_mut()
        .filter_map(|item| match item {
            Item::Impl(block) if block.trait_.is_none() && is_client(&block.self_ty) => Some(block),
            _ => None,
        })
        .flat_map(|block| block.items.iter_mut())
        .filter_map(|item| match item {
            ImplItem::Fn(f) if f.sig.asyncness.is_some() => Some(f),
            _ => None,
        })
        .collect()
}

fn is_client(ty: &syn::Type) -> bool {
    matches!(ty, syn::Type::Path(p) if p.qself.is_none() && p.path.is_ident("Client"))
}

fn is_ident(expr: &Expr, name: &str) -> bool {
    matches!(expr, Expr::Path(p) if p.qself.is_none() && p.path.is_ident(name))
}

/// `encode_path(&wallet_id.to_string())` becomes `wallet_id.as_str()` for validated ids:
/// a `Display` round trip and a percent-encoding pass into two `String`s per id, for
/// nothing. Every operation need not take every id, but each id must be found at least once
/// and at most once per operation.
pub fn path_ids_as_str(file: &mut syn::File, ops: usize) -> Result<()> {
    struct PathIds(BTreeMap<&'static str, usize>);
    impl VisitMut for PathIds {
        // The URL is built inside `format!`, whose arguments syn keeps as plain tokens.
        fn visit_macro_mut(&mut self, mac: &mut syn::Macro) {
            use syn::parse::Parser;
            type Args = syn::punctuated::Punctuated<Expr, syn::Token![,]>;
            if !mac.path.is_ident("format") {
                return;
            }
            if let Ok(mut args) = Args::parse_terminated.parse2(mac.tokens.clone()) {
                for arg in args.iter_mut() {
                    self.visit_expr_mut(arg);
                }
                mac.tokens = args.into_token_stream();
            }
        }
        fn visit_expr_mut(&mut self, expr: &mut Expr) {
            if let Some(id) = encoded_validated_id(expr) {
                let ident = syn::Ident::new(id, proc_macro2::Span::call_site());
                *expr = syn::parse_quote!(#ident.as_str());
                *self.0.entry(id).or_default() += 1;
            } else {
                visit_mut::visit_expr_mut(self, expr);
            }
        }
    }
    let mut visitor = PathIds(BTreeMap::new());
    visitor.visit_file_mut(file);
    for id in VALIDATED_PATH_IDS {
        let found = visitor.0.get(id).copied().unwrap_or(0);
        if found == 0 || found > ops {
            bail!(
                "rewrite path_ids_as_str: expected `encode_path(&{id}.to_string())` 1 to {ops} \
                 times, found {found}"
            );
        }
    }
    Ok(())
}

/// The validated id `expr` percent-encodes, when it is `encode_path(&<id>.to_string())`.
fn encoded_validated_id(expr: &Expr) -> Option<&'static str> {
    let Expr::Call(call) = expr else { return None };
    if !is_ident(&call.func, "encode_path") || call.args.len() != 1 {
        return None;
    }
    let Expr::Reference(reference) = &call.args[0] else {
        return None;
    };
    let Expr::MethodCall(to_string) = &*reference.expr else {
        return None;
    };
    if to_string.method != "to_string" || !to_string.args.is_empty() {
        return None;
    }
    VALIDATED_PATH_IDS
        .iter()
        .copied()
        .find(|id| is_ident(&to_string.receiver, id))
}

/// Drops the `api-version` header progenitor builds for every request (Dynamic's API knows
/// no such header; the sdk's `pre` hook also removes it). Every operation must have it; the
/// header map itself goes too when nothing else (a header parameter) is added to it.
pub fn drop_api_version_header(file: &mut syn::File) -> Result<()> {
    for method in operation_methods(file) {
        let name = method.sig.ident.to_string();
        let stmts = &mut method.block.stmts;
        let found: Vec<usize> = (0..stmts.len())
            .filter(|&i| is_api_version_append(&stmts[i]))
            .collect();
        let [at] = found[..] else {
            bail!(
                "rewrite drop_api_version_header: expected one api-version header in `{name}`, \
                 found {}",
                found.len()
            );
        };
        stmts.remove(at);
        let mut appends = CountAppends(0);
        for stmt in stmts.iter_mut() {
            appends.visit_stmt_mut(stmt);
        }
        if appends.0 > 0 {
            continue; // header parameters still use the map
        }
        let declared: Vec<usize> = (0..stmts.len())
            .filter(|&i| declares_header_map(&stmts[i]))
            .collect();
        let [at] = declared[..] else {
            bail!(
                "rewrite drop_api_version_header: expected one `let mut header_map` in `{name}`, \
                 found {}",
                declared.len()
            );
        };
        stmts.remove(at);
        let mut uses = DropHeadersCall(0);
        for stmt in stmts.iter_mut() {
            uses.visit_stmt_mut(stmt);
        }
        if uses.0 != 1 {
            bail!(
                "rewrite drop_api_version_header: expected one `.headers(header_map)` in \
                 `{name}`, found {}",
                uses.0
            );
        }
    }
    Ok(())
}

/// `header_map.append(HeaderName::from_static("api-version"), ..);`
fn is_api_version_append(stmt: &Stmt) -> bool {
    let Stmt::Expr(Expr::MethodCall(call), Some(_)) = stmt else {
        return false;
    };
    call.method == "append"
        && is_ident(&call.receiver, "header_map")
        && call.args.first().is_some_and(|name| {
            name.to_token_stream()
                .to_string()
                .contains("\"api-version\"")
        })
}

/// `let mut header_map = ..;`
fn declares_header_map(stmt: &Stmt) -> bool {
    let Stmt::Local(local) = stmt else {
        return false;
    };
    matches!(&local.pat, syn::Pat::Ident(p) if p.ident == "header_map")
}

/// Counts `header_map.append(..)` anywhere (optional header parameters append inside an `if`).
struct CountAppends(usize);
impl VisitMut for CountAppends {
    fn visit_expr_method_call_mut(&mut self, call: &mut syn::ExprMethodCall) {
        if call.method == "append" && is_ident(&call.receiver, "header_map") {
            self.0 += 1;
        }
        visit_mut::visit_expr_method_call_mut(self, call);
    }
}

/// Replaces `<receiver>.headers(header_map)` with `<receiver>`, counting the replacements.
struct DropHeadersCall(usize);
impl VisitMut for DropHeadersCall {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        if let Expr::MethodCall(call) = expr {
            if call.method == "headers"
                && call.args.len() == 1
                && is_ident(&call.args[0], "header_map")
            {
                *expr = (*call.receiver).clone();
                self.0 += 1;
                // The receiver may hold more of the chain.
                self.visit_expr_mut(expr);
                return;
            }
        }
        visit_mut::visit_expr_mut(self, expr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    /// An operation as progenitor emits it, with or without a body and header parameters.
    fn method(verb: &str, body: bool, header_param: bool) -> TokenStream {
        let verb = syn::Ident::new(verb, proc_macro2::Span::call_site());
        let body = body.then(|| quote!(.json(&body)));
        let header = header_param.then(|| {
            quote! { header_map.append("x-trace", x_trace.to_string().try_into()?); }
        });
        quote! {
            impl Client {
                pub async fn op<'a>(&'a self, environment_id: &'a crate::ids::EnvironmentId, wallet_id: &'a crate::ids::WalletId) -> Result<(), Error> {
                    let url = format!("{}/environments/{}/waas/{}", self.baseurl, encode_path(&environment_id.to_string()), encode_path(&wallet_id.to_string()),);
                    let mut header_map = ::reqwest::header::HeaderMap::with_capacity(1usize);
                    header_map.append(
                        ::reqwest::header::HeaderName::from_static("api-version"),
                        ::reqwest::header::HeaderValue::from_static(Self::api_version()),
                    );
                    #header
                    #[allow(unused_mut)]
                    let mut request = self.client.#verb(url).header(::reqwest::header::ACCEPT, ::reqwest::header::HeaderValue::from_static("application/json")) #body .headers(header_map).build()?;
                    Ok(())
                }
            }
            impl ClientInfo<()> for Client {
                fn api_version() -> &'static str { "1.0.0" }
            }
        }
    }

    fn rewritten(tokens: TokenStream) -> String {
        apply_all(tokens).unwrap().to_string()
    }

    #[test]
    fn ids_are_used_as_they_are() {
        let out = rewritten(method("post", true, false));
        assert!(out.contains("environment_id . as_str ()"), "{out}");
        assert!(out.contains("wallet_id . as_str ()"), "{out}");
        assert!(!out.contains("encode_path"), "{out}");
    }

    /// The rewrite that failed on text: with and without a body, whatever the layout.
    #[test]
    fn the_api_version_header_is_dropped_with_or_without_a_body() {
        for (verb, body) in [
            ("post", true),
            ("delete", false),
            ("get", false),
            ("post", false),
        ] {
            let out = rewritten(method(verb, body, false));
            assert!(
                !out.contains("api-version") && !out.contains("header_map"),
                "{verb} {body}: {out}"
            );
            assert!(out.contains(&format!(". {verb} (url) . header")), "{out}");
            // The client's own api_version() stays (ClientInfo needs it).
            assert!(out.contains("fn api_version"), "{out}");
        }
    }

    #[test]
    fn a_header_parameter_keeps_the_map_without_the_api_version() {
        let out = rewritten(method("get", false, true));
        assert!(!out.contains("api-version"), "{out}");
        assert!(
            out.contains("x-trace") && out.contains(". headers (header_map)"),
            "{out}"
        );
    }

    #[test]
    fn a_missing_pattern_stops_generation() {
        let without_id = method("post", true, false)
            .to_string()
            .replace("encode_path (& environment_id . to_string ())", "x");
        let err = apply_all(without_id.parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "expected `encode_path(&environment_id.to_string())` 1 to 1 times, found 0"
            ),
            "{err}"
        );
        let without_header = method("post", true, false)
            .to_string()
            .replace("\"api-version\"", "\"other\"");
        let err = apply_all(without_header.parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("expected one api-version header in `op`, found 0"),
            "{err}"
        );
        let without_use = method("post", true, false)
            .to_string()
            .replace(". headers (header_map)", "");
        let err = apply_all(without_use.parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("expected one `.headers(header_map)` in `op`, found 0"),
            "{err}"
        );
    }
}
