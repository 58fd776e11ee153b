//! `#[contract]`: turns a module of ordinary Rust functions into a Wisp contract.
//!
//! Inside the module:
//! - `#[init]`, `#[entry]` and `#[view]` functions become exports `ep:init`, `ep:<name>` and
//!   `view:<name>`; their arguments are decoded from borsh, their return value encoded, and a
//!   returned `Err(e)` aborts with `e`'s contract error code;
//! - a `#[migrate] fn migrate(...)` becomes `ep:migrate`, which runs only when the contract's
//!   admin upgrades it to this code (`root.upgrade`), in the same request, over the state the
//!   old code left;
//! - `#[event]` structs get borsh derives and implement `wisp_sdk::Event`; up to three leading
//!   fields marked `#[indexed]` are indexed by value in nodes' event index;
//! - an `#[errors]` enum (explicit discriminants ≥ 1, at most one per contract) implements
//!   `wisp_sdk::ContractError`;
//! - a typed client `<Module>Client` (module `token` → `TokenClient`) gets one method per entry
//!   point and view, for other contracts and for tests (`wisp_sdk::client`).
//!
//! Built with the crate feature `library`, the module compiles without its wasm exports and
//! interface section, so another contract can depend on the crate for its client.
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

/// Names the generated client's own methods take; a contract function may not use them.
const CLIENT_METHODS: &[&str] = &[
    "new",
    "with_backend",
    "address",
    "backend",
    "backend_mut",
    "into_backend",
    "attach_sompi",
];

/// An `#[entry]` or `#[view]` function, as its typed client method needs it.
struct ClientMethod {
    name: syn::Ident,
    kind: CallKind,
    params: Vec<(syn::Ident, syn::Type)>,
    returns: syn::Type,
    doc_attrs: Vec<Attribute>,
}

/// The type a function returns to callers as Rust: `Result<T, E>` → `T`, nothing → `()`.
fn return_syn_type(output: &ReturnType) -> syn::Type {
    let ty = match output {
        ReturnType::Default => return syn::parse_quote!(()),
        ReturnType::Type(_, ty) => ty.as_ref(),
    };
    if let syn::Type::Path(p) = ty {
        if let Some(last) = p.path.segments.last() {
            if last.ident == "Result" {
                if let syn::PathArguments::AngleBracketed(args) = &last.arguments {
                    if let Some(syn::GenericArgument::Type(ok)) = args.args.first() {
                        return ok.clone();
                    }
                }
            }
        }
    }
    ty.clone()
}

/// How a client method takes a parameter of type `ty`: small `Copy` scalars by value, `String`
/// as `&str`, `Vec<T>` as `&[T]`, anything else by reference. Each encodes as `ty` would.
fn client_param_type(ty: &syn::Type) -> syn::Type {
    if let syn::Type::Path(p) = ty {
        if let Some(last) = p.path.segments.last() {
            let name = last.ident.to_string();
            let by_value = [
                "bool", "u8", "u16", "u32", "u64", "u128", "i8", "i16", "i32", "i64", "i128",
                "Hname",
            ];
            if by_value.contains(&name.as_str()) && last.arguments.is_empty() {
                return ty.clone();
            }
            if name == "String" {
                return syn::parse_quote!(&str);
            }
            if name == "Vec" {
                if let syn::PathArguments::AngleBracketed(args) = &last.arguments {
                    if let Some(syn::GenericArgument::Type(item)) = args.args.first() {
                        return syn::parse_quote!(&[#item]);
                    }
                }
            }
        }
    }
    syn::parse_quote!(&#ty)
}

/// The typed client of a contract module: `<Module>Client<B = Env>` with one method per entry
/// point and view (see `wisp_sdk::client`).
fn client(
    module: &syn::Ident,
    methods: &[ClientMethod],
    error_enum: Option<&syn::Ident>,
) -> proc_macro2::TokenStream {
    let client = format_ident!(
        "{}",
        wisp_core::interface::client_type_name(&module.to_string())
    );
    let error: syn::Type = match error_enum {
        Some(e) => syn::parse_quote!(#e),
        None => syn::parse_quote!(::wisp_sdk::client::NoErrors),
    };
    let struct_doc = format!(
        "Typed client of the `{module}` contract: one method per entry point and view, with \
         their own argument and return types (`wisp_sdk::client`). `{client}::new(hname)` calls \
         from inside a contract; `{client}::with_backend(backend, hname)` through another backend \
         (`wisp_test::Caller` in tests)."
    );
    let fns = methods.iter().map(|m| {
        let name = &m.name;
        let function = name.to_string();
        let returns = &m.returns;
        let docs = &m.doc_attrs;
        let arg_names: Vec<_> = m.params.iter().map(|(n, _)| n).collect();
        let arg_types: Vec<_> = m.params.iter().map(|(_, t)| client_param_type(t)).collect();
        match m.kind {
            CallKind::Entry => quote! {
                #(#docs)*
                ///
                /// (Typed client call of the contract's entry point; sends any sompi set with
                /// `attach_sompi`.)
                ///
                /// # Errors
                /// The callee's typed error, or the backend's report of another failure.
                pub fn #name(&mut self, #(#arg_names: #arg_types),*)
                    -> ::core::result::Result<#returns, ::wisp_sdk::client::ClientError<#error, B::Failure>>
                {
                    let args = ::wisp_sdk::client::encode_args(&(#(#arg_names,)*));
                    let sompi = ::core::mem::take(&mut self.attached_sompi);
                    ::wisp_sdk::client::finish::<#returns, #error, B>(
                        ::wisp_sdk::client::Backend::call(&mut self.backend, self.contract, #function, &args, sompi),
                    )
                }
            },
            CallKind::View => quote! {
                #(#docs)*
                ///
                /// (Typed client call of the contract's view.)
                ///
                /// # Errors
                /// The callee's typed error, or the backend's report of another failure.
                pub fn #name(&self, #(#arg_names: #arg_types),*)
                    -> ::core::result::Result<#returns, ::wisp_sdk::client::ClientError<#error, B::Failure>>
                {
                    let args = ::wisp_sdk::client::encode_args(&(#(#arg_names,)*));
                    ::wisp_sdk::client::finish::<#returns, #error, B>(
                        ::wisp_sdk::client::Backend::view(&self.backend, self.contract, #function, &args),
                    )
                }
            },
        }
    });
    quote! {
        #[doc = #struct_doc]
        #[derive(Clone, Debug)]
        pub struct #client<B = ::wisp_sdk::client::Env> {
            backend: B,
            contract: ::wisp_sdk::Hname,
            attached_sompi: u64,
        }

        impl #client<::wisp_sdk::client::Env> {
            /// A client of the contract at `contract`, for calls from inside a contract.
            pub fn new(contract: ::wisp_sdk::Hname) -> Self {
                Self::with_backend(::wisp_sdk::client::Env, contract)
            }
        }

        impl<B: ::wisp_sdk::client::Backend> #client<B> {
            /// A client of the contract at `contract` that calls through `backend`.
            pub fn with_backend(backend: B, contract: ::wisp_sdk::Hname) -> Self {
                #client { backend, contract, attached_sompi: 0 }
            }
            /// The hname of the contract this client calls.
            pub fn address(&self) -> ::wisp_sdk::Hname {
                self.contract
            }
            /// The backend.
            pub fn backend(&self) -> &B {
                &self.backend
            }
            /// The backend, mutably.
            pub fn backend_mut(&mut self) -> &mut B {
                &mut self.backend
            }
            /// Gives the backend back (in tests: the caller, with the last receipt).
            pub fn into_backend(self) -> B {
                self.backend
            }
            /// Attaches `sompi` base tokens to the next entry-point call (only that one).
            pub fn attach_sompi(&mut self, sompi: u64) -> &mut Self {
                self.attached_sompi = sompi;
                self
            }
            #(#fns)*
        }
    }
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
    let mut exports = Vec::new();
    let mut client_methods = Vec::new();
    let mut error_enum: Option<syn::Ident> = None;
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
                if name != "init" && name != "migrate" {
                    if CLIENT_METHODS.contains(&name.to_string().as_str()) {
                        return Err(syn::Error::new(
                            name.span(),
                            format!(
                                "`{name}` is a method of the generated client; rename the function (reserved: {})",
                                CLIENT_METHODS.join(", ")
                            ),
                        ));
                    }
                    client_methods.push(ClientMethod {
                        name: name.clone(),
                        kind,
                        params: arg_names
                            .iter()
                            .cloned()
                            .zip(arg_types.iter().cloned())
                            .collect(),
                        returns: return_syn_type(&f.sig.output),
                        doc_attrs: f
                            .attrs
                            .iter()
                            .filter(|a| a.path().is_ident("doc"))
                            .cloned()
                            .collect(),
                    });
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
                exports.push(quote! {
                    #[export_name = #export]
                    pub extern "C" fn #wrapper() {
                        let (#(#arg_names,)*): (#(#arg_types,)*) = ::wisp_sdk::decode_args();
                        ::wisp_sdk::IntoReturn::into_return(super::#name(#(#arg_names),*));
                    }
                });
            }
            Item::Struct(s) if s.attrs.iter().any(|a| a.path().is_ident("event")) => {
                take_marker(&mut s.attrs, "event");
                let mut fields = Vec::new();
                let mut indexed = 0u8;
                for (i, field) in s.fields.iter_mut().enumerate() {
                    let Some(ident) = &field.ident else {
                        return Err(syn::Error::new(field.span(), "event fields must be named"));
                    };
                    if take_marker(&mut field.attrs, "indexed") {
                        if i != usize::from(indexed) {
                            return Err(syn::Error::new(
                                ident.span(),
                                "#[indexed] fields come first: put them before the others",
                            ));
                        }
                        if indexed == wisp_core::interface::MAX_INDEXED_FIELDS {
                            return Err(syn::Error::new(
                                ident.span(),
                                format!(
                                    "an event has at most {} #[indexed] fields",
                                    wisp_core::interface::MAX_INDEXED_FIELDS
                                ),
                            ));
                        }
                        indexed += 1;
                    }
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
                    docs: docs(&s.attrs),
                    indexed,
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
                if let Some(first) = &error_enum {
                    return Err(syn::Error::new(
                        ident.span(),
                        format!("a contract has one #[errors] enum, and `{first}` is it: merge them (codes must be unique anyway)"),
                    ));
                }
                error_enum = Some(ident.clone());
                let mut code_arms = Vec::new();
                let mut message_arms = Vec::new();
                let mut from_code_arms = Vec::new();
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
                        docs: docs(&v.attrs),
                    });
                    code_arms.push(quote!(#ident::#vname => #code));
                    from_code_arms
                        .push(quote!(#code => ::core::option::Option::Some(#ident::#vname)));
                    message_arms.push(quote!(#ident::#vname => #message));
                }
                e.attrs
                    .push(syn::parse_quote!(#[derive(Debug, Clone, Copy, PartialEq, Eq)]));
                e.attrs.push(syn::parse_quote!(#[repr(u32)]));
                generated.push(quote! {
                    impl ::wisp_sdk::ContractError for #ident {
                        fn code(&self) -> u32 { match self { #(#code_arms,)* } }
                        fn message(&self) -> &str { match self { #(#message_arms,)* } }
                        fn from_code(code: u32) -> ::core::option::Option<Self> {
                            match code { #(#from_code_arms,)* _ => ::core::option::Option::None }
                        }
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
    generated.push(client(&module.ident, &client_methods, error_enum.as_ref()));
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

        /// The wasm exports and the interface section: compiled only for wasm32, and not with
        /// the crate feature `library` (a contract crate need not declare it, hence the allow).
        #[allow(unexpected_cfgs)]
        #[doc(hidden)]
        mod __wisp_exports {
            #[cfg(all(target_arch = "wasm32", not(feature = "library")))]
            use super::*;
            #(
                #[cfg(all(target_arch = "wasm32", not(feature = "library")))]
                #exports
            )*
            #[cfg(all(target_arch = "wasm32", not(feature = "library")))]
            #[link_section = #section]
            #[used]
            static __WISP_INTERFACE: [u8; #len] = [#(#byte_lits),*];
        }
    });
    for g in generated {
        let file: syn::File = syn::parse2(g)?;
        items.extend(file.items);
    }
    // On host builds the exports are compiled out, so the functions look unused.
    module.attrs.push(syn::parse_quote!(#[allow(dead_code)]));
    Ok(quote!(#module))
}
