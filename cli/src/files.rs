//! Files the tool creates: private (0600) and never written through a symbolic link, and
//! never the input (compared by device and inode, so a hard link or a redirected stdin is
//! seen through).

use std::fs::{File, Metadata, OpenOptions};
use std::path::Path;

use crate::exit::CliError;

/// Opens `path` for appending and reading, as it is; creates it 0600 if absent (and makes it
/// durable in its directory). A symbolic link is refused: in a shared directory, a link
/// planted where the tool writes would send its lines (and a root's) anywhere. `what` names
/// the flag for messages.
pub fn open_private(path: &Path, what: &str) -> Result<File, CliError> {
    let existed = path.exists();
    let mut options = OpenOptions::new();
    options.create(true).append(true).read(true);
    restrict(&mut options);
    let file = options.open(path).map_err(|e| refused(path, what, e))?;
    if !existed {
        sync_directory_of(path);
    }
    make_private(&file, path, what)?;
    Ok(file)
}

/// Creates (or truncates) `path` for writing, 0600, refusing a symbolic link. An existing
/// file is emptied only once it is known to be private.
pub fn create_private(path: &Path, what: &str) -> Result<File, CliError> {
    let mut options = OpenOptions::new();
    options.create(true).write(true);
    restrict(&mut options);
    let file = options.open(path).map_err(|e| refused(path, what, e))?;
    if make_private(&file, path, what)? {
        file.set_len(0).map_err(|e| {
            CliError::Other(format!("cannot write {} ({what}): {e}", path.display()))
        })?;
    }
    Ok(file)
}

/// An existing file keeps its mode when opened: made 0600 too, as a new one is (it holds key
/// share ids). A file others can read that this user may not make private (another user's,
/// planted in a shared directory) is refused: what the tool writes would be theirs to read.
/// A device or a pipe (`/dev/null`, say) is left as it is: its mode is the system's, not the
/// tool's to change. Returns whether `file` is a regular file.
#[cfg(unix)]
fn make_private(file: &File, path: &Path, what: &str) -> Result<bool, CliError> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = file
        .metadata()
        .map_err(|e| CliError::Other(format!("cannot write {} ({what}): {e}", path.display())))?;
    if !metadata.is_file() {
        return Ok(false);
    }
    if metadata.permissions().mode() & 0o077 == 0 {
        return Ok(true);
    }
    match file.set_permissions(std::fs::Permissions::from_mode(0o600)) {
        Ok(()) => Ok(true),
        Err(e) => Err(CliError::InvalidInput(format!(
            "{what} {} can be read by other users and cannot be made private ({e}): it is \
             another user's file; nothing was written to it; remove it or choose another path",
            path.display()
        ))),
    }
}

#[cfg(not(unix))]
fn make_private(file: &File, _: &Path, _: &str) -> Result<bool, CliError> {
    Ok(file.metadata().is_ok_and(|m| m.is_file()))
}

#[cfg(unix)]
fn restrict(options: &mut OpenOptions) {
    use std::os::unix::fs::OpenOptionsExt;
    options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
}

#[cfg(not(unix))]
fn restrict(_: &mut OpenOptions) {}

fn refused(path: &Path, what: &str, e: std::io::Error) -> CliError {
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if is_link {
        CliError::InvalidInput(format!(
            "{what} {} is a symbolic link: the tool never writes through one (a link planted \
             in a shared directory would redirect it); give the file's real path",
            path.display()
        ))
    } else {
        CliError::Other(format!("cannot write {} ({what}): {e}", path.display()))
    }
}

/// Syncs the directory holding `path`, so that a new file survives a power loss. Where a
/// directory cannot be opened (not every platform allows it), the file's own syncs are all.
fn sync_directory_of(path: &Path) {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
}

/// Whether `path` is the file `input` reads (`-`: stdin): the same device and inode.
pub fn is_input(input: &str, path: &Path) -> bool {
    let Ok(written) = std::fs::metadata(path) else {
        return false;
    };
    let read = if input == "-" {
        stdin_metadata()
    } else {
        std::fs::metadata(input).ok()
    };
    read.is_some_and(|read| same_file(&read, &written))
}

#[cfg(unix)]
fn stdin_metadata() -> Option<Metadata> {
    use std::os::fd::AsFd;
    let fd = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
    File::from(fd).metadata().ok()
}

#[cfg(not(unix))]
fn stdin_metadata() -> Option<Metadata> {
    None
}

#[cfg(unix)]
fn same_file(a: &Metadata, b: &Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_: &Metadata, _: &Metadata) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_private_and_links_are_refused() {
        let dir = std::env::temp_dir().join(format!("dynamic-waas-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("results.jsonl");
        open_private(&path, "--results").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let target = dir.join("elsewhere");
            let planted = dir.join("planted");
            std::os::unix::fs::symlink(&target, &planted).unwrap();
            let err = open_private(&planted, "--results").unwrap_err().to_string();
            assert!(err.contains("symbolic link"), "{err}");
            assert!(!target.exists(), "written through the link");
            let err = create_private(&planted, "--dump-state")
                .unwrap_err()
                .to_string();
            assert!(err.contains("symbolic link"), "{err}");
            // A hard link is the same file.
            let hard = dir.join("hard");
            std::fs::hard_link(&path, &hard).unwrap();
            assert!(is_input(path.to_str().unwrap(), &hard));
            assert!(!is_input(path.to_str().unwrap(), &target));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
