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

/// What a `bench` command measures: the matrix form when `--windows W,W,...` is given (see
/// [`BenchPlan::Matrix`](crate::rust_peer::bench::BenchPlan); `--marks` adds the marks of
/// [`mark`](crate::rust_peer::bench::mark)), else `--window W`.
pub fn bench_plan(args: &[String], usage: &str) -> Result<crate::rust_peer::bench::BenchPlan, String> {
    use crate::rust_peer::bench::{BenchPlan, MatrixConfig};
    let marks = args.iter().any(|a| a == "--marks");
    if !args.iter().any(|a| a == "--windows") {
        if marks {
            return Err(format!("--marks needs --windows\n{usage}"));
        }
        return Ok(BenchPlan::Single(bench_config(args, usage)?));
    }
    let text = option(args, "--windows", usage)?;
    let windows = text
        .split(',')
        .map(|w| w.parse::<u32>().ok().filter(|&w| w > 0))
        .collect::<Option<Vec<u32>>>()
        .ok_or_else(|| format!("--windows {text:?} is not a list of positive numbers"))?;
    Ok(BenchPlan::Matrix(MatrixConfig {
        calls: number(args, "--calls", usage)?,
        windows,
        payload: number(args, "--payload", usage)?,
        marks,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rust_peer::bench::{BenchPlan, MatrixConfig};

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn windows_option_selects_the_matrix_form() {
        let plan = bench_plan(&args("bench --calls 10 --windows 1,8,64 --payload 16"), "").unwrap();
        let BenchPlan::Matrix(config) = plan else { panic!("expected the matrix form, got {plan:?}") };
        assert_eq!(config, MatrixConfig { calls: 10, windows: vec![1, 8, 64], payload: 16, marks: false });
        let plan = bench_plan(&args("bench --calls 10 --windows 8 --payload 16 --marks"), "").unwrap();
        assert!(matches!(&plan, BenchPlan::Matrix(c) if c.marks), "--marks is not set in {plan:?}");
    }

    #[test]
    fn single_window_form_is_kept_without_windows() {
        let plan = bench_plan(&args("bench --calls 10 --window 4 --payload 16"), "").unwrap();
        assert!(matches!(plan, BenchPlan::Single(c) if (c.calls, c.window, c.payload) == (10, 4, 16)));
    }

    #[test]
    fn zero_or_garbage_windows_are_refused() {
        for windows in ["0", "1,,8", "x"] {
            let text = format!("bench --calls 10 --windows {windows} --payload 16");
            assert!(bench_plan(&args(&text), "").is_err(), "{windows} was accepted");
        }
    }
}
