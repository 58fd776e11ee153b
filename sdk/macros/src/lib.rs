//! `#[contract]`: turns a module of ordinary Rust functions into a Wisp contract.
//!
//! Inside the module:
//! - `#[init]`, `#[entry]` and `#[view]` functions become exports `ep:init`, `ep:<name>` and
//!   `view:<name>`; their arguments are decoded from borsh, their return value encoded, and a
//!   returned `Err(e)` aborts with `e`'s contract error code;
//! - a `#[migrate] fn migrate(...)` becomes `ep:migrate`, which runs only when the contract's
//!   admin upgrades it to this code (`root.upgrade`), in the same request, over the state the
//!   old code left;
//! - `#[event]` structs get borsh derives and implement `wisp_sdk::Event`;
//! - an `#[errors]` enum (explicit discriminants ≥ 1) implements `wisp_sdk::ContractError`.
//!
//! The macro writes the contract interface (functions, types, events, errors) as JSON into the
//! `wisp:interface` custom section and as the `INTERFACE_JSON` constant.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::{format_ident, quote};
use syn::{parse_macro_input, spanned::Spanned, Attribute, FnArg, Item, ItemMod, Pat, ReturnType};
use wisp_core::interface::{ContractInterface, ErrorDef, EventDef, Field, Function, Type};
use wisp_core::CallKind;

fn take_marker(attrs: &mut Vec<Attribute>, name: &str) -> bool {
    let before = attrs.len();
    attrs.retain(|a| !a.path().is_ident(name));
    attrs.len() != before
}

fn docs(attrs: &[Attribute]) -> String {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value().trim().to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn interface_type(ty: &syn::Type) -> syn::Result<Type> {
    let text = quote!(#ty).to_string();
    Type::parse(&text).map_err(|e| {
        syn::Error::new(
            ty.span(),
            format!("type `{text}` cannot appear in a contract interface: {e}"),
        )
    })
}

/// The `T` a function returns to callers: `Result<T, E>` → `T`, `()` → none.
fn return_type(output: &ReturnType) -> syn::Result<Option<Type>> {
    let ty = match output {
        ReturnType::Default => return Ok(None),
        ReturnType::Type(_, ty) => ty,
    };
    if let syn::Type::Path(p) = ty.as_ref() {
        if let Some(last) = p.path.segments.last() {
            if last.ident == "Result" {
                if let syn::PathArguments::AngleBracketed(args) = &last.arguments {
                    if let Some(syn::GenericArgument::Type(ok)) = args.args.first() {
                        if matches!(ok, syn::Type::Tuple(t) if t.elems.is_empty()) {
                            return Ok(None);
                        }
                        return interface_type(ok).map(Some);
                    }
                }
            }
        }
    }
    if matches!(ty.as_ref(), syn::Type::Tuple(t) if t.elems.is_empty()) {
        return Ok(None);
    }
    interface_type(ty).map(Some)
}

/// Marks a module as a Wisp contract; see the crate docs.
#[proc_macro_attribute]
pub fn contract(_attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut module = parse_macro_input!(item as ItemMod);
    match expand(&mut module) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand(module: &mut ItemMod) -> syn::Result<proc_macro2::TokenStream> {
    let mut interface = ContractInterface {
        name: module.ident.to_string(),
        ..Default::default()
    };
    let Some((_, items)) = module.content.as_mut() else {
        return Err(syn::Error::new(
            module.span(),
            "#[contract] needs an inline module: `mod name { ... }`",
        ));
    };
    let mut generated = Vec::new();
    for item in items.iter_mut() {
        match item {
            Item::Fn(f) => {
                let kind = if take_marker(&mut f.attrs, "init") {
                    if f.sig.ident != "init" {
                        return Err(syn::Error::new(
                            f.sig.ident.span(),
                            "the #[init] function must be named `init`",
                        ));
                    }
                    CallKind::Entry
                } else if take_marker(&mut f.attrs, "migrate") {
                    if f.sig.ident != "migrate" {
                        return Err(syn::Error::new(
                            f.sig.ident.span(),
                            "the #[migrate] function must be named `migrate`",
                        ));
                    }
                    CallKind::Entry
                } else if take_marker(&mut f.attrs, "entry") {
                    CallKind::Entry
                } else if take_marker(&mut f.attrs, "view") {
                    CallKind::View
                } else {
                    continue;
                };
                let name = f.sig.ident.clone();
                let mut params = Vec::new();
                let mut arg_names = Vec::new();
                let mut arg_types = Vec::new();
                for input in &f.sig.inputs {
                    let FnArg::Typed(pt) = input else {
                        return Err(syn::Error::new(
                            input.span(),
                            "contract functions take no `self`",
                        ));
                    };
                    let Pat::Ident(id) = pt.pat.as_ref() else {
                        return Err(syn::Error::new(
                            pt.pat.span(),
                            "parameters must be plain names",
                        ));
                    };
                    params.push(Field {
                        name: id.ident.to_string(),
                        ty: interface_type(&pt.ty)?,
                    });
                    arg_names.push(id.ident.clone());
                    arg_types.push(pt.ty.as_ref().clone());
                }
                interface.functions.push(Function {
                    name: name.to_string(),
                    kind,
                    params,
                    returns: return_type(&f.sig.output)?,
                    docs: docs(&f.attrs),
                });
                let export = match kind {
                    CallKind::Entry => format!("ep:{name}"),
                    CallKind::View => format!("view:{name}"),
                };
                let wrapper = format_ident!("__wisp_export_{}", name);
                generated.push(quote! {
                    #[cfg(target_arch = "wasm32")]
                    #[doc(hidden)]
                    #[export_name = #export]
                    pub extern "C" fn #wrapper() {
                        let (#(#arg_names,)*): (#(#arg_types,)*) = ::wisp_sdk::decode_args();
                        ::wisp_sdk::IntoReturn::into_return(#name(#(#arg_names),*));
                    }
                });
            }
            Item::Struct(s) if s.attrs.iter().any(|a| a.path().is_ident("event")) => {
                take_marker(&mut s.attrs, "event");
                let mut fields = Vec::new();
                for field in &s.fields {
                    let Some(ident) = &field.ident else {
                        return Err(syn::Error::new(field.span(), "event fields must be named"));
                    };
                    fields.push(Field {
                        name: ident.to_string(),
                        ty: interface_type(&field.ty)?,
                    });
                }
                let ident = s.ident.clone();
                let topic = ident.to_string();
                interface.events.push(EventDef {
                    name: topic.clone(),
                    fields,
                });
                s.attrs.push(syn::parse_quote!(#[derive(::wisp_sdk::borsh::BorshSerialize, ::wisp_sdk::borsh::BorshDeserialize, Debug, Clone, PartialEq, Eq)]));
                s.attrs
                    .push(syn::parse_quote!(#[borsh(crate = "::wisp_sdk::borsh")]));
                generated.push(quote! {
                    impl ::wisp_sdk::Event for #ident {
                        const TOPIC: &'static str = #topic;
                    }
                });
            }
            Item::Enum(e) if e.attrs.iter().any(|a| a.path().is_ident("errors")) => {
                take_marker(&mut e.attrs, "errors");
                let ident = e.ident.clone();
                let mut code_arms = Vec::new();
                let mut message_arms = Vec::new();
                for v in &e.variants {
                    let Some((
                        _,
                        syn::Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Int(code),
                            ..
                        }),
                    )) = &v.discriminant
                    else {
                        return Err(syn::Error::new(
                            v.span(),
                            "each error needs an explicit code: `Name = 1`",
                        ));
                    };
                    let code: u32 = code.base10_parse()?;
                    if code == 0 || code == u32::MAX {
                        return Err(syn::Error::new(
                            v.span(),
                            "error codes 0 (panic) and u32::MAX (bad arguments) are reserved",
                        ));
                    }
                    let vname = &v.ident;
                    let message = {
                        let d = docs(&v.attrs);
                        if d.is_empty() {
                            vname.to_string()
                        } else {
                            d
                        }
                    };
                    interface.errors.push(ErrorDef {
                        name: vname.to_string(),
                        code,
                    });
                    code_arms.push(quote!(#ident::#vname => #code));
                    message_arms.push(quote!(#ident::#vname => #message));
                }
                e.attrs
                    .push(syn::parse_quote!(#[derive(Debug, Clone, Copy, PartialEq, Eq)]));
                e.attrs.push(syn::parse_quote!(#[repr(u32)]));
                generated.push(quote! {
                    impl ::wisp_sdk::ContractError for #ident {
                        fn code(&self) -> u32 { match self { #(#code_arms,)* } }
                        fn message(&self) -> &str { match self { #(#message_arms,)* } }
                    }
                });
            }
            _ => {}
        }
    }
    if !interface.functions.iter().any(|f| f.name == "init") {
        return Err(syn::Error::new(
            module.ident.span(),
            "a contract needs an `#[init] fn init(...)` (it may do nothing)",
        ));
    }
    let json = serde_json::to_string(&interface).map_err(|e| {
        syn::Error::new(
            Span::call_site(),
            format!("interface does not serialize: {e}"),
        )
    })?;
    let bytes = json.as_bytes();
    let len = bytes.len();
    let byte_lits = bytes.iter().map(|b| quote!(#b));
    let section = wisp_core::interface::INTERFACE_SECTION;
    generated.push(quote! {
        /// The contract interface as JSON (also embedded in the `wisp:interface` custom section).
        pub const INTERFACE_JSON: &str = #json;
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        #[link_section = #section]
        #[used]
        static __WISP_INTERFACE: [u8; #len] = [#(#byte_lits),*];
    });
    for g in generated {
        let file: syn::File = syn::parse2(g)?;
        items.extend(file.items);
    }
    // On host builds the exports are compiled out, so the functions look unused.
    module.attrs.push(syn::parse_quote!(#[allow(dead_code)]));
    Ok(quote!(#module))
}
