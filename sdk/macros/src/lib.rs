//! Attribute macros of `vigil-sdk`. Use them through `vigil_sdk`:
//! `#[vigil_sdk::scorer]`, `#[vigil_sdk::trigger]`, `#[vigil_sdk::condition]`,
//! `#[vigil_sdk::action]` on a function, `#[vigil_sdk::playbook]` on an
//! `impl vigil_sdk::Playbook for T` block, `#[vigil_sdk::ruleset]` on an
//! `impl vigil_sdk::Ruleset for T` block.
//!
//! Each expands to the component exports of its world, generated with
//! `wit-bindgen` from the contract embedded below, and a `describe()` built
//! from the macro's options.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, ExprArray, FnArg, ItemFn, ItemImpl, Lit, LitInt, LitStr, ReturnType, Type};

/// The contract the exports are generated from: the same file the SDK's
/// shared types are generated from.
const WIT: &str = include_str!("../../../wit/v0.7.0/vigil-plugin.wit");

/// The options every plugin macro takes.
#[derive(Default)]
struct Options {
    name: Option<LitStr>,
    version: Option<LitStr>,
    description: Option<LitStr>,
    subscribes: Vec<LitStr>,
    config_schema: Option<LitStr>,
    fuel: Option<LitInt>,
    windows: Vec<(LitStr, LitInt, LitInt)>,
    tags: Vec<LitStr>,
    score: Option<LitStr>,
    bands: Option<Vec<LitStr>>,
    factors: Vec<LitStr>,
}

/// The most windows a plugin may declare, and the longest metric name
/// (the host's limits, checked here so the plugin fails to build rather
/// than to load).
const MAX_WINDOWS: usize = 64;
const MAX_METRIC_BYTES: usize = 256;

/// The most policy tags a plugin may declare (the host's limit: a verdict
/// names its tags by the bits of a `u64`), and the longest declared name
/// (tag, score, band or factor).
const MAX_TAGS: usize = 64;
const MAX_NAME_BYTES: usize = 128;

/// The most bands, and the most factors, a declared score may have (the
/// host's limits).
const MAX_BANDS_OR_FACTORS: usize = 64;

/// Parses a list of names given as string literals (`what`: "policy tag",
/// "band", "factor"): each 1 to 128 bytes with no control characters, none
/// twice, at most `max`.
fn parse_names(array: ExprArray, what: &str, usage: &str, max: usize) -> syn::Result<Vec<LitStr>> {
    let mut names: Vec<LitStr> = Vec::new();
    for element in &array.elems {
        let Expr::Lit(syn::ExprLit {
            lit: Lit::Str(literal),
            ..
        }) = element
        else {
            return Err(syn::Error::new(element.span(), usage));
        };
        let name = literal.value();
        check_name(literal, what)?;
        if names.iter().any(|seen| seen.value() == name) {
            return Err(syn::Error::new(
                literal.span(),
                format!("the {what} `{name}` is declared twice"),
            ));
        }
        names.push(literal.clone());
    }
    if names.len() > max {
        return Err(syn::Error::new(
            array.span(),
            format!(
                "{} {what}s declared; a plugin may declare at most {max}",
                names.len()
            ),
        ));
    }
    Ok(names)
}

/// Refuses a declared name (`what`) that the host would refuse: empty,
/// longer than 128 bytes, or with control characters.
fn check_name(literal: &LitStr, what: &str) -> syn::Result<()> {
    let name = literal.value();
    if name.is_empty() || name.len() > MAX_NAME_BYTES || name.chars().any(char::is_control) {
        return Err(syn::Error::new(
            literal.span(),
            format!("a {what} is 1 to {MAX_NAME_BYTES} bytes with no control characters"),
        ));
    }
    Ok(())
}

/// Parses `windows = [("logins", 30, 0), ...]`.
fn parse_windows(array: ExprArray) -> syn::Result<Vec<(LitStr, LitInt, LitInt)>> {
    const USAGE: &str = "`windows` lists history windows as (metric, days, offset days), for example [(\"logins\", 30, 0), (\"logins\", 30, 30)]";
    let mut windows = Vec::new();
    for element in &array.elems {
        let Expr::Tuple(tuple) = element else {
            return Err(syn::Error::new(element.span(), USAGE));
        };
        let parts: Vec<&Expr> = tuple.elems.iter().collect();
        let [metric, days, offset] = parts.as_slice() else {
            return Err(syn::Error::new(tuple.span(), USAGE));
        };
        let (
            Expr::Lit(syn::ExprLit {
                lit: Lit::Str(metric),
                ..
            }),
            Expr::Lit(syn::ExprLit {
                lit: Lit::Int(days),
                ..
            }),
            Expr::Lit(syn::ExprLit {
                lit: Lit::Int(offset),
                ..
            }),
        ) = (metric, days, offset)
        else {
            return Err(syn::Error::new(tuple.span(), USAGE));
        };
        let name = metric.value();
        if name.is_empty() || name.len() > MAX_METRIC_BYTES {
            return Err(syn::Error::new(
                metric.span(),
                format!("a metric name is 1 to {MAX_METRIC_BYTES} bytes"),
            ));
        }
        for number in [days, offset] {
            number.base10_parse::<u32>()?;
        }
        windows.push((metric.clone(), days.clone(), offset.clone()));
    }
    if windows.len() > MAX_WINDOWS {
        return Err(syn::Error::new(
            array.span(),
            format!(
                "{} windows declared; a plugin may declare at most {MAX_WINDOWS}",
                windows.len()
            ),
        ));
    }
    Ok(windows)
}

impl Options {
    fn parse(attr: TokenStream) -> syn::Result<Self> {
        let mut options = Options::default();
        let parser = syn::meta::parser(|meta| {
            if meta.path.is_ident("name") {
                let name: LitStr = meta.value()?.parse()?;
                // The host's rule (it refuses any other name at load), checked
                // here so that a bad name fails the build, not the deploy.
                let valid = (1..=64).contains(&name.value().len())
                    && name
                        .value()
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                if !valid {
                    return Err(syn::Error::new(
                        name.span(),
                        "a plugin name is 1 to 64 lowercase letters, digits and dashes, for example \"seat-usage\"",
                    ));
                }
                options.name = Some(name);
            } else if meta.path.is_ident("version") {
                options.version = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("description") {
                options.description = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("config_schema") {
                options.config_schema = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("fuel") {
                options.fuel = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("windows") {
                options.windows = parse_windows(meta.value()?.parse()?)?;
            } else if meta.path.is_ident("tags") {
                options.tags = parse_names(
                    meta.value()?.parse()?,
                    "policy tag",
                    "`tags` lists the policy tags a verdict may carry as string literals, for example [\"hipaa\", \"sox\"]",
                    MAX_TAGS,
                )?;
            } else if meta.path.is_ident("score") {
                let score: LitStr = meta.value()?.parse()?;
                check_name(&score, "score name")?;
                options.score = Some(score);
            } else if meta.path.is_ident("bands") {
                let array: ExprArray = meta.value()?.parse()?;
                let span = array.span();
                let bands = parse_names(
                    array,
                    "band",
                    "`bands` lists the score's band labels as string literals, for example [\"hot\", \"warm\", \"cold\"]",
                    MAX_BANDS_OR_FACTORS,
                )?;
                if bands.is_empty() {
                    return Err(syn::Error::new(
                        span,
                        "a score has at least one band; leave `bands` out for the health bands",
                    ));
                }
                options.bands = Some(bands);
            } else if meta.path.is_ident("factors") {
                options.factors = parse_names(
                    meta.value()?.parse()?,
                    "factor",
                    "`factors` lists the names of the score's factors as string literals, for example [\"usage\", \"login-trend\"]",
                    MAX_BANDS_OR_FACTORS,
                )?;
            } else if meta.path.is_ident("subscribes") {
                let array: ExprArray = meta.value()?.parse()?;
                for element in array.elems {
                    match element {
                        Expr::Lit(syn::ExprLit {
                            lit: Lit::Str(kind),
                            ..
                        }) => options.subscribes.push(kind),
                        other => {
                            return Err(syn::Error::new(
                                other.span(),
                                "`subscribes` lists event kinds as string literals, for example [\"usage.*\"]",
                            ));
                        }
                    }
                }
            } else {
                return Err(meta.error(
                    "unknown option; expected one of: name, version, description, subscribes, config_schema, fuel, windows, tags, score, bands, factors",
                ));
            }
            Ok(())
        });
        syn::parse::Parser::parse(parser, attr)?;
        Ok(options)
    }

    fn describe(&self, kind: &str) -> TokenStream2 {
        let kind = format_ident!("{kind}");
        let name = match &self.name {
            Some(name) => quote!(::std::string::String::from(#name)),
            None => quote!(::std::env!("CARGO_PKG_NAME").replace('_', "-")),
        };
        let version = match &self.version {
            Some(version) => quote!(#version),
            None => quote!(::std::env!("CARGO_PKG_VERSION")),
        };
        let description = match &self.description {
            Some(description) => quote!(#description),
            None => quote!(::std::env!("CARGO_PKG_DESCRIPTION")),
        };
        let schema = match &self.config_schema {
            Some(schema) => quote!(#schema),
            None => quote!("{}"),
        };
        let fuel = match &self.fuel {
            Some(fuel) => quote!(#fuel),
            None => quote!(5_000_000),
        };
        let subscribes = &self.subscribes;
        let metrics = self.windows.iter().map(|(metric, _, _)| metric);
        let days = self.windows.iter().map(|(_, days, _)| days);
        let offsets = self.windows.iter().map(|(_, _, offset)| offset);
        let tags = &self.tags;
        let scores = match &self.score {
            Some(score) => {
                let factors = &self.factors;
                quote!(::std::vec![::vigil_sdk::ScoreInfo {
                    name: ::std::string::String::from(#score),
                    bands: DECLARED_SCORE
                        .bands
                        .iter()
                        .map(|band| ::std::string::String::from(*band))
                        .collect(),
                    factors: ::std::vec![#(::std::string::String::from(#factors)),*],
                }])
            }
            None => quote!(::std::vec::Vec::new()),
        };
        quote! {
            ::vigil_sdk::PluginInfo {
                name: #name,
                version: ::std::string::String::from(#version),
                kind: ::vigil_sdk::PluginKind::#kind,
                description: ::std::string::String::from(#description),
                subscribes: ::std::vec![#(::std::string::String::from(#subscribes)),*],
                config_schema: ::std::string::String::from(#schema),
                default_fuel: #fuel,
                windows: ::std::vec![#(::vigil_sdk::WindowSpec {
                    metric: ::std::string::String::from(#metrics),
                    days: #days,
                    offset_days: #offsets,
                }),*],
                policy_tags: ::std::vec![#(::std::string::String::from(#tags)),*],
                scores: #scores,
            }
        }
    }

    /// The declared score's bands: those given, or the SDK's health bands
    /// (the very literals `health_band` returns, so that the glue finds
    /// them by address).
    fn bands(&self) -> TokenStream2 {
        match &self.bands {
            Some(bands) => quote!(&[#(#bands),*]),
            None => quote!(&::vigil_sdk::HEALTH_BANDS),
        }
    }

    /// The declared windows, policy tags and score as constants the batch
    /// glue hands to the SDK, in the order `describe` declares them.
    fn declared(&self) -> TokenStream2 {
        let windows = self
            .windows
            .iter()
            .map(|(metric, days, offset)| quote!((#metric, #days, #offset)));
        let tags = &self.tags;
        let score = match &self.score {
            Some(score) => {
                let bands = self.bands();
                let factors = &self.factors;
                quote! {
                    const DECLARED_SCORE: ::vigil_sdk::__private::DeclaredScore =
                        ::vigil_sdk::__private::DeclaredScore {
                            name: #score,
                            bands: #bands,
                            factors: &[#(#factors),*],
                        };
                }
            }
            None => quote!(),
        };
        quote! {
            const DECLARED_WINDOWS: &[::vigil_sdk::__private::Declared] = &[#(#windows),*];
            const DECLARED_TAGS: &[&str] = &[#(#tags),*];
            #score
        }
    }

    /// Requires `score` of a scorer or a ruleset.
    fn require_score(&self, kind: &str, function: proc_macro2::Span) -> syn::Result<()> {
        match self.score {
            None if kind == "Scorer" || kind == "Ruleset" => Err(syn::Error::new(
                function,
                format!(
                    "a {} declares the score it computes: `score = \"health\"` (and `factors = [...]`; `bands` defaults to the health bands)",
                    kind.to_lowercase()
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Refuses `score`, `bands` and `factors` on a kind that returns no
    /// score cards.
    fn check_score(&self, kind: &str) -> syn::Result<()> {
        if kind == "Scorer" || kind == "Ruleset" {
            return Ok(());
        }
        let given = self
            .score
            .as_ref()
            .or(self.bands.as_ref().and_then(|bands| bands.first()))
            .or(self.factors.first());
        match given {
            Some(option) => Err(syn::Error::new(
                option.span(),
                "only scorers and rulesets return score cards and declare `score`, `bands` and `factors`",
            )),
            None => Ok(()),
        }
    }

    /// Refuses `tags` on a kind that returns no verdicts.
    fn check_tags(&self, kind: &str) -> syn::Result<()> {
        match self.tags.first() {
            Some(tag) if !matches!(kind, "Condition" | "Playbook" | "Ruleset") => {
                Err(syn::Error::new(
                    tag.span(),
                    "only conditions, playbooks and rulesets return verdicts and declare policy tags",
                ))
            }
            _ => Ok(()),
        }
    }
}

/// The `wit-bindgen` invocation generating the exports of `world`, reusing
/// the SDK's types and imports.
fn bindings(world: &str) -> TokenStream2 {
    quote! {
        ::vigil_sdk::__private::wit_bindgen::generate!({
            inline: #WIT,
            world: #world,
            with: {
                "vigil:plugin/types@0.7.0": ::vigil_sdk::wit::vigil::plugin::types,
                "vigil:plugin/host@0.7.0": ::vigil_sdk::wit::vigil::plugin::host,
                "vigil:plugin/history@0.7.0": ::vigil_sdk::wit::vigil::plugin::history,
                "vigil:plugin/batching@0.7.0": ::vigil_sdk::wit::vigil::plugin::batching,
            },
            runtime_path: "::vigil_sdk::__private::wit_bindgen::rt",
        });
    }
}

/// One plugin kind exported from a function.
struct FnKind {
    /// The world and `PluginKind` variant.
    world: &'static str,
    kind: &'static str,
    /// The exported interface (module under `exports::vigil::plugin`).
    interface: &'static str,
    /// The parameters the function takes, by reference, and what it returns.
    params: &'static [&'static str],
    returns: &'static str,
}

const SCORER: FnKind = FnKind {
    world: "scorer",
    kind: "Scorer",
    interface: "scoring",
    params: &["Context<'_>"],
    returns: "ScoreCard",
};
const TRIGGER: FnKind = FnKind {
    world: "trigger",
    kind: "Trigger",
    interface: "triggering",
    params: &["Context<'_>"],
    returns: "Vec<Signal>",
};
const CONDITION: FnKind = FnKind {
    world: "condition",
    kind: "Condition",
    interface: "conditioning",
    params: &["Context<'_>", "Signal"],
    returns: "Verdict",
};
const ACTION: FnKind = FnKind {
    world: "action",
    kind: "Action",
    interface: "planning",
    params: &["Context<'_>", "Signal", "Verdict"],
    returns: "Vec<Intent>",
};

fn signature(kind: &FnKind) -> String {
    let params: Vec<String> = kind.params.iter().map(|p| format!("&{p}")).collect();
    format!(
        "fn({}) -> Result<{}, PluginError>",
        params.join(", "),
        kind.returns
    )
}

fn check_fn(kind: &FnKind, item: &ItemFn) -> syn::Result<()> {
    let sig = &item.sig;
    let expected = signature(kind);
    if let Some(asyncness) = sig.asyncness {
        return Err(syn::Error::new(
            asyncness.span(),
            format!("a {} is not async; expected `{expected}`", kind.world),
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            format!(
                "a {} takes no generic parameters; expected `{expected}`",
                kind.world
            ),
        ));
    }
    if sig.inputs.len() != kind.params.len() {
        return Err(syn::Error::new(
            sig.inputs.span(),
            format!(
                "a {} takes {} parameter(s); expected `{expected}`",
                kind.world,
                kind.params.len()
            ),
        ));
    }
    for (arg, param) in sig.inputs.iter().zip(kind.params) {
        let by_reference = match arg {
            FnArg::Typed(typed) => matches!(*typed.ty, Type::Reference(_)),
            FnArg::Receiver(_) => false,
        };
        if !by_reference {
            return Err(syn::Error::new(
                arg.span(),
                format!("this parameter must be `&{param}`; expected `{expected}`"),
            ));
        }
    }
    if let ReturnType::Default = sig.output {
        return Err(syn::Error::new(
            sig.ident.span(),
            format!("a {} returns a result; expected `{expected}`", kind.world),
        ));
    }
    Ok(())
}

fn export_fn(kind: &FnKind, attr: TokenStream, item: TokenStream) -> TokenStream {
    let options = match Options::parse(attr).and_then(|options| {
        options.check_tags(kind.kind)?;
        options.check_score(kind.kind)?;
        Ok(options)
    }) {
        Ok(options) => options,
        Err(error) => return error.to_compile_error().into(),
    };
    let item: ItemFn = match syn::parse(item.clone()) {
        Ok(item) => item,
        Err(_) => {
            let item = TokenStream2::from(item);
            let message = format!(
                "#[vigil_sdk::{}] goes on a function `{}`",
                kind.world,
                signature(kind)
            );
            return syn::Error::new(item.span(), message)
                .to_compile_error()
                .into();
        }
    };
    if let Err(error) =
        check_fn(kind, &item).and_then(|()| options.require_score(kind.kind, item.sig.ident.span()))
    {
        let error = error.to_compile_error();
        return quote!(#error #item).into();
    }
    let function = &item.sig.ident;
    let module = format_ident!("__vigil_export_{}", function);
    let args: Vec<TokenStream2> = match kind.params.len() {
        1 => vec![quote!(ctx)],
        2 => vec![quote!(ctx), quote!(signal)],
        _ => vec![quote!(ctx), quote!(signal), quote!(&verdict)],
    };
    // Spanned on the function's return type, so a wrong one is reported there.
    let call = match &item.sig.output {
        ReturnType::Type(_, ty) => quote_spanned!(ty.span()=> super::#function(#(#args),*)),
        ReturnType::Default => quote!(super::#function(#(#args),*)),
    };
    let glue = batch_export(kind, &call);
    let module = export_module(&module, kind.world, kind.kind, &options, glue);
    quote!(#item #module).into()
}

/// The module that exports a plugin of kind `kind` (`Scorer`, …) from
/// world `world`: the world's bindings, `describe` from `options`, the
/// declarations the glue reads, and `glue`, the world's other exports
/// (implemented for `VigilPlugin`; an impl-block plugin's type is `Target`
/// there).
fn export_module(
    module: &syn::Ident,
    world: &str,
    kind: &str,
    options: &Options,
    glue: TokenStream2,
) -> TokenStream2 {
    let bindings = bindings(world);
    let describe = options.describe(kind);
    let declared = options.declared();
    quote! {
        #[doc(hidden)]
        // Keeps the example in wit-bindgen's generated `export!` docs out of
        // the plugin's doctests.
        #[cfg(not(doctest))]
        #[allow(missing_docs, unused, clippy::all, unsafe_code)]
        mod #module {
            use ::vigil_sdk::*;
            #bindings

            struct VigilPlugin;

            impl exports::vigil::plugin::meta::Guest for VigilPlugin {
                fn describe() -> ::vigil_sdk::PluginInfo {
                    ::vigil_sdk::__private::enter();
                    #describe
                }
            }

            #declared
            #glue

            // Natively the glue is type-checked but exports nothing, so plugin
            // crates also build as native libraries for unit tests.
            #[cfg(target_arch = "wasm32")]
            export!(VigilPlugin);
        }
    }
}

/// The batch export (contract 0.6 and later) around a plugin function: the function
/// runs once per item, in order, after telling the host which item it is
/// on, on the item's context unpacked from the batch's packed contexts,
/// with the item's declared windows at hand; its results are packed as
/// they come. `kind` names the export (`kind.interface`) and what the
/// plugin function returns; `call` calls the function with `ctx` (and, for
/// `check`, `signal`; for `plan`, `signal` and `verdict`) in scope.
fn batch_export(kind: &FnKind, call: &TokenStream2) -> TokenStream2 {
    let interface = kind.interface;
    let types = quote!(::vigil_sdk::wit::vigil::plugin::types);
    let private = quote!(::vigil_sdk::__private);
    let windows = quote!(::std::vec::Vec<::vigil_sdk::MetricWindow>);
    // What the plugin function returns, named as the glue's
    // `use ::vigil_sdk::*` brings it in: the binding below gives a function
    // with another return type its error on that type.
    let returns: Type = match syn::parse_str(kind.returns) {
        Ok(ty) => ty,
        Err(error) => return error.to_compile_error(),
    };
    // Runs `$call` for one item, with `ctx` unpacked from context `$at`.
    let each = |at: TokenStream2, call: &TokenStream2| {
        quote! {{
            let result: ::std::result::Result<#returns, ::vigil_sdk::PluginError> =
                match unpacker.context(#at) {
                    ::std::result::Result::Ok(ctx) => #call,
                    ::std::result::Result::Err(error) => ::std::result::Result::Err(error),
                };
            result
        }}
    };
    match interface {
        "scoring" | "triggering" => {
            let (export, packed, packer) = if interface == "scoring" {
                (
                    quote!(score),
                    quote!(#types::PackedScoreCards),
                    quote!(#private::CardPacker::new(unpacker.len(), &DECLARED_SCORE)),
                )
            } else {
                (
                    quote!(evaluate),
                    quote!(#types::PackedSignals),
                    quote!(#private::SignalPacker::new(unpacker.len())),
                )
            };
            let interface = format_ident!("{interface}");
            let each = each(quote!(index), call);
            quote! {
                impl exports::vigil::plugin::#interface::Guest for VigilPlugin {
                    fn #export(contexts: #types::PackedContexts, windows: #windows) -> #packed {
                        #private::enter();
                        let mut unpacker = #private::Unpacker::new(&contexts);
                        let mut packer = #packer;
                        #private::start_items(DECLARED_WINDOWS, windows);
                        for index in 0..unpacker.len() {
                            #private::begin_item(index);
                            packer.push(#each);
                        }
                        #private::end_items();
                        packer.finish()
                    }
                }
            }
        }
        "conditioning" => {
            let each = each(quote!(at), call);
            quote! {
                impl exports::vigil::plugin::conditioning::Guest for VigilPlugin {
                    fn check(
                        contexts: #types::PackedContexts,
                        windows: #windows,
                        items: #types::PackedCheckItems,
                    ) -> #types::PackedVerdicts {
                        #private::enter();
                        let mut unpacker = #private::Unpacker::new(&contexts);
                        let mut items = #private::CheckItems::new(items);
                        let mut packer = #private::VerdictPacker::new(items.len(), DECLARED_TAGS);
                        #private::start_items(DECLARED_WINDOWS, windows);
                        for index in 0..items.len() {
                            #private::begin_item(index);
                            let result = match items.item(index) {
                                ::std::result::Result::Ok((at, signal)) => #each,
                                ::std::result::Result::Err(error) => ::std::result::Result::Err(error),
                            };
                            packer.push(result);
                        }
                        #private::end_items();
                        packer.finish()
                    }
                }
            }
        }
        _ => {
            let each = each(quote!(at), call);
            let result = quote!(
                ::std::result::Result<
                    ::std::vec::Vec<::vigil_sdk::Intent>,
                    ::vigil_sdk::PluginError,
                >
            );
            quote! {
                impl exports::vigil::plugin::planning::Guest for VigilPlugin {
                    fn plan(
                        contexts: #types::PackedContexts,
                        windows: #windows,
                        items: ::std::vec::Vec<exports::vigil::plugin::planning::PlanItem>,
                    ) -> ::std::vec::Vec<#result> {
                        #private::enter();
                        let mut unpacker = #private::Unpacker::new(&contexts);
                        #private::start_items(DECLARED_WINDOWS, windows);
                        let results = items
                            .iter()
                            .enumerate()
                            .map(|(index, item)| {
                                #private::begin_item(index);
                                let at = usize::try_from(item.context).unwrap_or(usize::MAX);
                                let signal = &item.signal;
                                let verdict = ::vigil_sdk::Verdict::from(&item.verdict);
                                #each
                            })
                            .collect();
                        #private::end_items();
                        results
                    }
                }
            }
        }
    }
}

/// Exports `fn(&Context<'_>) -> Result<ScoreCard, PluginError>` as a scorer.
#[proc_macro_attribute]
pub fn scorer(attr: TokenStream, item: TokenStream) -> TokenStream {
    export_fn(&SCORER, attr, item)
}

/// Exports `fn(&Context<'_>) -> Result<Vec<Signal>, PluginError>` as a trigger.
#[proc_macro_attribute]
pub fn trigger(attr: TokenStream, item: TokenStream) -> TokenStream {
    export_fn(&TRIGGER, attr, item)
}

/// Exports `fn(&Context<'_>, &Signal) -> Result<Verdict, PluginError>` as a condition.
#[proc_macro_attribute]
pub fn condition(attr: TokenStream, item: TokenStream) -> TokenStream {
    export_fn(&CONDITION, attr, item)
}

/// Exports `fn(&Context<'_>, &Signal, &Verdict) -> Result<Vec<Intent>, PluginError>`
/// as an action.
#[proc_macro_attribute]
pub fn action(attr: TokenStream, item: TokenStream) -> TokenStream {
    export_fn(&ACTION, attr, item)
}

/// The `impl vigil_sdk::<Trait> for T` block `#[vigil_sdk::<attribute>]`
/// goes on, or the compile error that says so (on the item, or on its
/// type, with the item kept so that its own errors are reported too).
fn trait_impl(
    item: TokenStream,
    attribute: &str,
    trait_name: &str,
) -> Result<ItemImpl, TokenStream> {
    let usage = format!(
        "#[vigil_sdk::{attribute}] goes on an `impl vigil_sdk::{trait_name} for YourType` block"
    );
    let item: ItemImpl = match syn::parse(item.clone()) {
        Ok(item) => item,
        Err(_) => {
            let item = TokenStream2::from(item);
            return Err(syn::Error::new(item.span(), usage)
                .to_compile_error()
                .into());
        }
    };
    let implements = item
        .trait_
        .as_ref()
        .and_then(|(_, path, _)| path.segments.last())
        .is_some_and(|segment| segment.ident == trait_name);
    if !implements {
        let error = syn::Error::new(item.self_ty.span(), usage).to_compile_error();
        return Err(quote!(#error #item).into());
    }
    Ok(item)
}

/// Exports the type of an `impl vigil_sdk::Playbook for T` block as a playbook.
#[proc_macro_attribute]
pub fn playbook(attr: TokenStream, item: TokenStream) -> TokenStream {
    let options = match Options::parse(attr).and_then(|options| {
        options.check_score("Playbook")?;
        Ok(options)
    }) {
        Ok(options) => options,
        Err(error) => return error.to_compile_error().into(),
    };
    let item = match trait_impl(item, "playbook", "Playbook") {
        Ok(item) => item,
        Err(error) => return error,
    };
    let self_ty = &item.self_ty;
    let evaluate = batch_export(
        &TRIGGER,
        &quote!(<Target as ::vigil_sdk::Playbook>::evaluate(ctx)),
    );
    let check = batch_export(
        &CONDITION,
        &quote!(<Target as ::vigil_sdk::Playbook>::check(ctx, signal)),
    );
    let plan = batch_export(
        &ACTION,
        &quote!(<Target as ::vigil_sdk::Playbook>::plan(
            ctx, signal, &verdict
        )),
    );
    let module = export_module(
        &format_ident!("__vigil_export_playbook"),
        "playbook",
        "Playbook",
        &options,
        quote! {
            type Target = super::#self_ty;

            #evaluate
            #check
            #plan
        },
    );
    quote!(#item #module).into()
}

/// Exports the type of an `impl vigil_sdk::Ruleset for T` block as a
/// ruleset: one `rule` export that, for each event, scores, raises and
/// checks every signal it raised.
#[proc_macro_attribute]
pub fn ruleset(attr: TokenStream, item: TokenStream) -> TokenStream {
    let options = match Options::parse(attr) {
        Ok(options) => options,
        Err(error) => return error.to_compile_error().into(),
    };
    let item = match trait_impl(item, "ruleset", "Ruleset") {
        Ok(item) => item,
        Err(error) => return error,
    };
    if let Err(error) = options.require_score("Ruleset", item.self_ty.span()) {
        let error = error.to_compile_error();
        return quote!(#error #item).into();
    }
    let self_ty = &item.self_ty;
    let types = quote!(::vigil_sdk::wit::vigil::plugin::types);
    let private = quote!(::vigil_sdk::__private);
    let module = export_module(
        &format_ident!("__vigil_export_ruleset"),
        "ruleset",
        "Ruleset",
        &options,
        quote! {
            type Target = super::#self_ty;

            /// One event's ruling: its card, then its signals with the
            /// card among the context's scores, then a verdict on each (a
            /// failed check is a verdict that the signal does not apply,
            /// as a failing condition's is).
            fn ruled(
                unpacker: &mut #private::Unpacker<'_>,
                at: usize,
            ) -> ::std::result::Result<#private::Ruled, ::vigil_sdk::PluginError> {
                let card = <Target as ::vigil_sdk::Ruleset>::score(unpacker.context(at)?)?;
                let ctx = unpacker.scored(&card);
                let signals = <Target as ::vigil_sdk::Ruleset>::evaluate(ctx)?;
                let mut verdicts = ::std::vec::Vec::with_capacity(signals.len());
                for signal in &signals {
                    verdicts.push(
                        <Target as ::vigil_sdk::Ruleset>::check(ctx, signal)
                            .unwrap_or_else(|error| #private::failed_check(&error)),
                    );
                }
                ::std::result::Result::Ok((card, signals, verdicts))
            }

            impl exports::vigil::plugin::ruling::Guest for VigilPlugin {
                fn rule(
                    contexts: #types::PackedContexts,
                    windows: ::std::vec::Vec<::vigil_sdk::MetricWindow>,
                ) -> #types::PackedRulings {
                    #private::enter();
                    let mut unpacker = #private::Unpacker::new(&contexts);
                    let mut packer =
                        #private::RulingPacker::new(unpacker.len(), &DECLARED_SCORE, DECLARED_TAGS);
                    #private::start_items(DECLARED_WINDOWS, windows);
                    for index in 0..unpacker.len() {
                        #private::begin_item(index);
                        packer.push(ruled(&mut unpacker, index));
                    }
                    #private::end_items();
                    packer.finish()
                }
            }
        },
    );
    quote!(#item #module).into()
}
