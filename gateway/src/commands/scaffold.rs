//! `portico plugin new NAME --lang rust|python|js`: writes a ready-to-build plugin from the
//! templates in `plugins/templates/` (embedded, so the binary needs no checkout to find them;
//! the plugin still needs one for its SDK and `wit/`).

use std::path::{Path, PathBuf};

use super::CommandError;
use super::output::Output;
use crate::cli::{PluginLanguage, PluginNewArgs};
use crate::plugin::{HostSettings, Manifest};

const MANIFEST: &str = include_str!("../../../plugins/templates/manifest.toml");

/// One file of a template: its path in the new folder and its text.
type TemplateFile = (&'static str, &'static str);

const RUST: &[TemplateFile] = &[
    (
        "Cargo.toml",
        include_str!("../../../plugins/templates/rust/Cargo.toml"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../plugins/templates/rust/lib.rs"),
    ),
    (
        "build.sh",
        include_str!("../../../plugins/templates/rust/build.sh"),
    ),
];

const PYTHON: &[TemplateFile] = &[
    (
        "app.py",
        include_str!("../../../plugins/templates/python/app.py"),
    ),
    (
        "build.sh",
        include_str!("../../../plugins/templates/python/build.sh"),
    ),
];

const JS: &[TemplateFile] = &[
    (
        "app.js",
        include_str!("../../../plugins/templates/js/app.js"),
    ),
    (
        "build.sh",
        include_str!("../../../plugins/templates/js/build.sh"),
    ),
];

/// The default `memory-mib` of a new plugin. Rust components start in well under a MiB. The
/// Python and JavaScript runtimes need memory before the plugin runs a line (with the
/// `require-labels` examples: 8 MiB fails both, JavaScript runs in 12, Python needs 16), and
/// their objects are several times larger than the JSON they come from: 48 MiB leaves room
/// for a few thousand objects.
pub(crate) fn default_memory_mib(lang: PluginLanguage) -> u32 {
    match lang {
        PluginLanguage::Rust => 32,
        PluginLanguage::Python | PluginLanguage::Js => 48,
    }
}

/// The files of `lang`'s template, the manifest included, with the placeholders filled in.
/// `portico` is the checkout's path relative to the new folder.
pub(crate) fn render(name: &str, lang: PluginLanguage, portico: &str) -> Vec<(String, String)> {
    let templates = match lang {
        PluginLanguage::Rust => RUST,
        PluginLanguage::Python => PYTHON,
        PluginLanguage::Js => JS,
    };
    let memory = default_memory_mib(lang).to_string();
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"))
            .replace("{{portico}}", portico)
            .replace("{{memory}}", &memory)
    };
    std::iter::once((format!("{name}.toml"), fill(MANIFEST)))
        .chain(
            templates
                .iter()
                .map(|(path, text)| ((*path).to_owned(), fill(text))),
        )
        .collect()
}

/// Writes the template (see [`PluginNewArgs`]).
pub async fn new_plugin(args: &PluginNewArgs) -> Result<Output, CommandError> {
    let cwd = std::env::current_dir().map_err(|e| CommandError::Read(".".to_owned(), e))?;
    let dir = cwd.join(
        args.dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(&args.name)),
    );
    let files = render(&args.name, args.lang, "{{portico}}");
    // The manifest names the plugin: the gateway's own parser checks the name and the rest.
    let ceilings = HostSettings::default().ceilings();
    Manifest::parse(&files[0].1, ceilings)
        .map_err(|e| CommandError::Usage(format!("cannot make plugin `{}`: {e}", args.name)))?;
    if std::fs::read_dir(&dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(CommandError::Usage(format!(
            "{} exists and is not empty",
            dir.display()
        )));
    }
    let checkout = match &args.portico {
        Some(path) => {
            let path = cwd.join(path);
            if !is_checkout(&path) {
                return Err(CommandError::Usage(format!(
                    "{} has no plugins/sdk-python, plugins/sdk-js, plugins/sdk and wit/: not a \
                     Portico checkout",
                    path.display()
                )));
            }
            path
        }
        None => find_checkout(&dir).ok_or_else(|| {
            CommandError::Usage(
                "no Portico checkout above the new folder: pass --portico DIR (the plugin \
                 builds with its SDK and wit/)"
                    .to_owned(),
            )
        })?,
    };
    // Both canonical, so `..` and symbolic links cannot skew the relative path.
    let failed = |path: &Path, e: std::io::Error| {
        CommandError::Failed(format!("cannot create {}: {e}", path.display()))
    };
    std::fs::create_dir_all(&dir).map_err(|e| failed(&dir, e))?;
    let dir = dir.canonicalize().map_err(|e| failed(&dir, e))?;
    let checkout = checkout.canonicalize().map_err(|e| failed(&checkout, e))?;
    let relative = relative_path(&checkout, &dir);
    let mut written = Vec::new();
    for (path, text) in render(&args.name, args.lang, &relative) {
        let file = dir.join(&path);
        write(&file, &text, path == "build.sh")
            .map_err(|e| CommandError::Failed(format!("cannot write {}: {e}", file.display())))?;
        written.push(path);
    }
    let shown = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    let mut text = format!(
        "created plugin `{}` ({}) in {}:\n",
        args.name,
        match args.lang {
            PluginLanguage::Rust => "rust",
            PluginLanguage::Python => "python",
            PluginLanguage::Js => "js",
        },
        shown.display()
    );
    for path in &written {
        text.push_str(&format!("  {path}\n"));
    }
    text.push_str(&format!(
        "build: {}/build.sh   (writes {name}.wasm beside {name}.toml)\n\
         run:   portico plugin run {name} --cluster CLUSTER --plugin-dir {}\n\
         install: portico plugin install {}/{name}.toml\n",
        shown.display(),
        shown.display(),
        shown.display(),
        name = args.name,
    ));
    Ok(Output::raw(text))
}

/// The checkout's path from `dir`, starting with `.` so a JavaScript import reads it as
/// relative.
fn relative_path(checkout: &Path, dir: &Path) -> String {
    let relative = pathdiff::diff_paths(checkout, dir).unwrap_or_else(|| checkout.to_owned());
    let text = relative.to_string_lossy().into_owned();
    if relative.is_absolute() || text.starts_with('.') {
        text
    } else if text.is_empty() {
        ".".to_owned()
    } else {
        format!("./{text}")
    }
}

fn is_checkout(path: &Path) -> bool {
    [
        "wit/worlds.wit",
        "plugins/sdk/Cargo.toml",
        "plugins/sdk-python/build.sh",
        "plugins/sdk-js/build.mjs",
    ]
    .iter()
    .all(|file| path.join(file).is_file())
}

/// The first folder at or above `start` that is a checkout.
fn find_checkout(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|path| is_checkout(path))
        .map(Path::to_owned)
}

fn write(path: &Path, text: &str, executable: bool) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text)?;
    #[cfg(unix)]
    if executable {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    }
    #[cfg(not(unix))]
    let _ = executable;
    Ok(())
}

#[cfg(test)]
mod tests;
