//! Running the `capnp` compiler and the generator from a build script or test, in the style of
//! capnpc's `CompilerCommand`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{GeneratedFile, Result, DEFAULT_MODULE_PREFIX};

/// Builder for one `capnp compile` run whose output is turned into Lean modules.
#[derive(Debug, Clone)]
pub struct CompilerCommand {
    files: Vec<PathBuf>,
    src_prefixes: Vec<PathBuf>,
    import_paths: Vec<PathBuf>,
    output_path: Option<PathBuf>,
    module_prefix: String,
    capnp: PathBuf,
    working_dir: Option<PathBuf>,
}

impl Default for CompilerCommand {
    fn default() -> Self {
        Self::new()
    }
}

impl CompilerCommand {
    /// A command with no files, output to `$OUT_DIR` (or the current directory), prefix
    /// [`DEFAULT_MODULE_PREFIX`].
    pub fn new() -> Self {
        CompilerCommand {
            files: Vec::new(),
            src_prefixes: Vec::new(),
            import_paths: Vec::new(),
            output_path: None,
            module_prefix: DEFAULT_MODULE_PREFIX.to_string(),
            capnp: PathBuf::from("capnp"),
            working_dir: None,
        }
    }

    /// Adds a schema file to compile.
    pub fn file(&mut self, path: impl AsRef<Path>) -> &mut Self {
        self.files.push(path.as_ref().to_path_buf());
        self
    }

    /// Strips `prefix` from file names when naming modules (`--src-prefix`).
    pub fn src_prefix(&mut self, prefix: impl AsRef<Path>) -> &mut Self {
        self.src_prefixes.push(prefix.as_ref().to_path_buf());
        self
    }

    /// Adds an import search directory (`-I`).
    pub fn import_path(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.import_paths.push(dir.as_ref().to_path_buf());
        self
    }

    /// Directory the Lean files are written under (module path below it).
    pub fn output_path(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.output_path = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Lean module prefix (default `Capnp.Gen`).
    pub fn module_prefix(&mut self, prefix: &str) -> &mut Self {
        self.module_prefix = prefix.to_string();
        self
    }

    /// Path of the `capnp` executable (default: `capnp` on `PATH`).
    pub fn capnp_executable(&mut self, path: impl AsRef<Path>) -> &mut Self {
        self.capnp = path.as_ref().to_path_buf();
        self
    }

    /// Runs the compiler from `dir`, so file names (and module names) are relative to it.
    pub fn working_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.working_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Compiles and returns the generated files without writing them.
    pub fn generate(&self) -> Result<Vec<GeneratedFile>> {
        Ok(crate::emit(&self.lower()?))
    }

    /// Compiles and returns the intermediate representation (names resolved, layouts computed).
    pub fn lower(&self) -> Result<crate::ir::Schema> {
        crate::lower_request(&self.request()?, &self.module_prefix)
    }

    /// Runs `capnp compile -o-` and returns the serialized `CodeGeneratorRequest`.
    pub fn request(&self) -> Result<Vec<u8>> {
        let mut command = Command::new(&self.capnp);
        command.arg("compile").arg("-o-");
        for prefix in &self.src_prefixes {
            command.arg(format!("--src-prefix={}", prefix.display()));
        }
        for dir in &self.import_paths {
            command.arg(format!("--import-path={}", dir.display()));
        }
        command.args(&self.files);
        if let Some(dir) = &self.working_dir {
            command.current_dir(dir);
        }
        let output = command.output().map_err(|error| {
            std::io::Error::new(
                error.kind(),
                format!(
                    "running `{}` failed: {error} (install the Cap'n Proto compiler: apt-get install capnproto)",
                    self.capnp.display()
                ),
            )
        })?;
        if !output.status.success() {
            return Err(std::io::Error::other(format!(
                "capnp compile failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ))
            .into());
        }
        Ok(output.stdout)
    }

    /// Compiles and writes every module under the output directory.
    pub fn run(&self) -> Result<Vec<GeneratedFile>> {
        let files = self.generate()?;
        let root = match &self.output_path {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")),
        };
        write_files(&root, &files)?;
        Ok(files)
    }
}

/// Writes generated files below `root`, creating directories as needed.
pub fn write_files(root: &Path, files: &[GeneratedFile]) -> Result<()> {
    for file in files {
        let path = root.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, &file.contents)?;
    }
    Ok(())
}
