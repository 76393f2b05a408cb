//! The one rule set for the entries of a tar of files: a package's `contents.tar.gz` and a docs
//! tarball both go through [`list_contents`], after [`check_extension_headers`]. It refuses an
//! entry that is not a regular file, directory or symlink; a path or symlink target that leaves
//! the root; the same path twice; a path or target that passes through a symlink; and archives
//! past the entry, path and header limits of [`super`].
//!
//! Symlink chains. A target that stays inside lexically can still escape on disk when one of
//! its components is itself a symlink: with `d/up -> ..` (inside on its own), the target
//! `d/up/..` of `s` goes through `d/up` to the root's parent. Resolving targets through the
//! other links would need the whole archive (a link may come after the one it redirects), a
//! hop bound and loop detection. The simpler sound rule, used here: no path and no symlink
//! target may pass through a symlink of the archive, wherever that symlink comes; only the last
//! component may name one. Every component the OS then follows before the last is a real
//! directory (or missing, which fails), where `..` means the same lexically and on disk, so the
//! lexical check is the physical one. A target may still end at another symlink (`a -> b`,
//! `b -> c`): each link is checked from its own directory, so the chain stays inside, and a
//! loop only makes the OS answer ELOOP. The same rule refuses a file written at `d/up/x` when
//! `d/up` is a symlink, in either order.
//!
//! Names are compared case-insensitively when looking for symlinks (`D/UP/..` goes through
//! `d/up` on macOS and Windows), and `\` separates components as `/` does (it does on Windows).

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};

use super::{
    ContentEntry, EntryKind, MAX_ENTRIES, MAX_HEADER_EXTENSION, MAX_PATH_BYTES, MAX_PATH_LEN,
    TarballError,
};

/// Walks the raw headers before [`list_contents`] does. The tar crate reads a GNU long name or
/// a pax header whole into memory before handing over the entry it names, so one of 100 MB
/// would be buffered before any rule saw it; here its size is checked first. Raw and resolved
/// walks agree on where each header lies because the two things that make them differ are
/// refused: a pax `size` record and a GNU sparse entry.
pub(super) fn check_extension_headers<'a, R: Read + 'a>(
    entries: io::Result<tar::Entries<'a, R>>,
) -> Result<(), TarballError> {
    for entry in entries.map_err(TarballError::Contents)?.raw(true) {
        let mut entry = entry.map_err(TarballError::Contents)?;
        let kind = entry.header().entry_type();
        if kind.is_gnu_sparse() {
            let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            return Err(TarballError::UnsupportedEntry {
                path,
                kind: "a sparse file".into(),
            });
        }
        let what = match kind {
            k if k.is_gnu_longname() => "a long name",
            k if k.is_gnu_longlink() => "a long link name",
            k if k.is_pax_local_extensions() || k.is_pax_global_extensions() => "a pax header",
            _ => continue,
        };
        let size = entry.size();
        if size > MAX_HEADER_EXTENSION {
            let mut start = Vec::new();
            (&mut entry)
                .take(60)
                .read_to_end(&mut start)
                .map_err(TarballError::Contents)?;
            return Err(TarballError::HeaderTooLarge {
                what,
                start: String::from_utf8_lossy(&start).into_owned(),
                size,
            });
        }
        if let Some(records) = entry.pax_extensions().map_err(TarballError::Contents)? {
            for record in records {
                let record = record.map_err(TarballError::Contents)?;
                if record.key_bytes() == b"size" {
                    return Err(TarballError::PaxSize);
                }
            }
        }
    }
    Ok(())
}

/// Lists the entries of a tar, refusing the first that breaks a rule of this module.
pub(super) fn list_contents<'a, R: Read + 'a>(
    entries: io::Result<tar::Entries<'a, R>>,
) -> Result<Vec<ContentEntry>, TarballError> {
    let mut rules = EntryRules::default();
    let mut out = Vec::new();
    for entry in entries.map_err(TarballError::Contents)? {
        let entry = entry.map_err(TarballError::Contents)?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        rules.count(&path)?;
        let kind = match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
            tar::EntryType::Directory => EntryKind::Directory,
            tar::EntryType::Symlink => EntryKind::Symlink(
                entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default(),
            ),
            tar::EntryType::XGlobalHeader => continue,
            other => {
                return Err(TarballError::UnsupportedEntry {
                    path,
                    kind: describe(other),
                });
            }
        };
        rules.check(&path, &kind)?;
        out.push(ContentEntry {
            path,
            kind,
            size: entry.size(),
        });
    }
    rules.finish()?;
    Ok(out)
}

fn describe(kind: tar::EntryType) -> String {
    match kind {
        tar::EntryType::Link => "a hard link".into(),
        tar::EntryType::Char => "a character device".into(),
        tar::EntryType::Block => "a block device".into(),
        tar::EntryType::Fifo => "a fifo".into(),
        tar::EntryType::GNUSparse => "a sparse file".into(),
        other => format!("an entry of type {:?}", char::from(other.as_byte())),
    }
}

/// The state the rules need across entries.
#[derive(Default)]
struct EntryRules {
    entries: usize,
    path_bytes: u64,
    /// Every entry's normalized path, exactly as spelled.
    seen: HashSet<String>,
    tree: Tree,
    /// Each path or symlink target with the nodes it passes through, checked once every
    /// symlink is known.
    walks: Vec<Walked>,
}

struct Walked {
    path: String,
    target: Option<String>,
    through: Vec<u32>,
}

impl EntryRules {
    fn count(&mut self, path: &str) -> Result<(), TarballError> {
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            return Err(TarballError::TooManyEntries(path.to_owned()));
        }
        Ok(())
    }

    fn check(&mut self, path: &str, kind: &EntryKind) -> Result<(), TarballError> {
        self.measure(path, path)?;
        let unsafe_path = || TarballError::UnsafePath(path.to_owned());
        let walk = self.tree.walk(ROOT, path).ok_or_else(unsafe_path)?;
        if walk.end == ROOT {
            // `./` names the root itself: harmless as a directory, nonsense as anything else.
            return match kind {
                EntryKind::Directory => Ok(()),
                _ => Err(unsafe_path()),
            };
        }
        if !self.seen.insert(walk.normalized) {
            return Err(TarballError::DuplicateEntry(path.to_owned()));
        }
        if let EntryKind::Symlink(target) = kind {
            self.measure(path, target)?;
            let parent = self.tree.nodes[walk.end as usize].parent;
            let link = self
                .tree
                .walk(parent, target)
                .ok_or_else(|| TarballError::UnsafeLink {
                    path: path.to_owned(),
                    target: target.clone(),
                })?;
            self.tree.nodes[walk.end as usize].link = Some(path.to_owned());
            self.walks.push(Walked {
                path: path.to_owned(),
                target: Some(target.clone()),
                through: link.through,
            });
        }
        self.walks.push(Walked {
            path: path.to_owned(),
            target: None,
            through: walk.through,
        });
        Ok(())
    }

    /// Counts `text` (the entry's path or its link target) against the path limits.
    fn measure(&mut self, path: &str, text: &str) -> Result<(), TarballError> {
        if text.len() > MAX_PATH_LEN {
            let cut = (0..=60).rev().find(|&i| text.is_char_boundary(i));
            return Err(TarballError::PathTooLong {
                start: text[..cut.unwrap_or(0)].to_owned(),
                size: text.len() as u64,
            });
        }
        self.path_bytes += text.len() as u64;
        if self.path_bytes > MAX_PATH_BYTES {
            return Err(TarballError::TooManyPathBytes(path.to_owned()));
        }
        Ok(())
    }

    /// The checks that need every symlink of the archive: nothing passes through one.
    fn finish(self) -> Result<(), TarballError> {
        for walked in self.walks {
            let Some(link) = walked
                .through
                .iter()
                .find_map(|&n| self.tree.nodes[n as usize].link.as_ref())
            else {
                continue;
            };
            return Err(match walked.target {
                Some(target) => TarballError::LinkThroughLink {
                    path: walked.path,
                    target,
                    link: link.clone(),
                },
                None => TarballError::PathThroughLink {
                    path: walked.path,
                    link: link.clone(),
                },
            });
        }
        Ok(())
    }
}

const ROOT: u32 = 0;

/// Every path named so far, as a tree of case-folded components: memory and time stay
/// proportional to the path bytes read, however deep the paths.
struct Tree {
    nodes: Vec<Node>,
    children: HashMap<(u32, String), u32>,
}

struct Node {
    parent: u32,
    /// The symlink entry at this node, as spelled in the archive.
    link: Option<String>,
}

/// Where a path leads and what it passes through on the way.
struct Walk {
    end: u32,
    /// The node before each component after the first: each is used as a directory.
    through: Vec<u32>,
    /// The path's components after resolving `.` and `..`, joined by `/`.
    normalized: String,
}

impl Default for Tree {
    fn default() -> Tree {
        Tree {
            nodes: vec![Node {
                parent: ROOT,
                link: None,
            }],
            children: HashMap::new(),
        }
    }
}

impl Tree {
    /// Resolves `path` from `start`, lexically. `None` when it would leave the root, or is
    /// empty, absolute, names a drive or holds a NUL.
    fn walk(&mut self, start: u32, path: &str) -> Option<Walk> {
        let is_drive =
            |c: &str| c.len() == 2 && c.ends_with(':') && c.as_bytes()[0].is_ascii_alphabetic();
        if path.is_empty() || path.starts_with(['/', '\\']) || path.contains('\0') {
            return None;
        }
        let mut node = start;
        let mut through = Vec::new();
        let mut spelled: Vec<&str> = Vec::new();
        for (i, component) in path.split(['/', '\\']).enumerate() {
            if i > 0 {
                through.push(node);
            }
            match component {
                "" | "." => {}
                ".." => {
                    if node == ROOT {
                        return None;
                    }
                    node = self.nodes[node as usize].parent;
                    spelled.pop();
                }
                c if i == 0 && is_drive(c) => return None,
                c => {
                    node = self.child(node, c);
                    spelled.push(c);
                }
            }
        }
        Some(Walk {
            end: node,
            through,
            normalized: spelled.join("/"),
        })
    }

    fn child(&mut self, parent: u32, name: &str) -> u32 {
        let key = (parent, name.to_lowercase());
        if let Some(&id) = self.children.get(&key) {
            return id;
        }
        // At most one node per path byte, and path bytes are capped far below u32::MAX.
        let id = u32::try_from(self.nodes.len()).expect("path bytes are capped");
        self.nodes.push(Node { parent, link: None });
        self.children.insert(key, id);
        id
    }
}
