//! Argument helpers shared by the peer binaries (`--name value` options).

/// The value following `--name`; `usage` is appended to the error.
pub fn option<'a>(args: &'a [String], name: &str, usage: &str) -> Result<&'a str, String> {
    let position = args.iter().position(|a| a == name).ok_or_else(|| format!("missing {name}\n{usage}"))?;
    args.get(position + 1).map(String::as_str).ok_or_else(|| format!("{name} needs a value\n{usage}"))
}

/// The value following `--name`, parsed as a number.
pub fn number<T: std::str::FromStr>(args: &[String], name: &str, usage: &str) -> Result<T, String> {
    let text = option(args, name, usage)?;
    text.parse().map_err(|_| format!("{name} {text:?} is not a number"))
}

/// The comma-separated list following `--skip`, or nothing.
pub fn skip_list(args: &[String], usage: &str) -> Result<Vec<String>, String> {
    if args.iter().any(|a| a == "--skip") {
        Ok(option(args, "--skip", usage)?.split(',').map(str::to_string).collect())
    } else {
        Ok(Vec::new())
    }
}

/// The benchmark configuration from `--calls`, `--window` and `--payload`.
pub fn bench_config(args: &[String], usage: &str) -> Result<crate::rust_peer::bench::BenchConfig, String> {
    Ok(crate::rust_peer::bench::BenchConfig {
        calls: number(args, "--calls", usage)?,
        window: number(args, "--window", usage)?,
        payload: number(args, "--payload", usage)?,
    })
}
