//! Package and repository names, each rule in one place: the rule for a package name hexrepo
//! may store and serve (whatever an existing repository or a mirrored upstream holds), hex.pm's
//! stricter rule for a new publish, and the rule for a repository named in a requirement. Every
//! route, storage key and registry check calls these, so no two places disagree on a limit.

/// The longest package name anywhere: a tarball's file name, `NAME-VERSION.tar`, must fit in
/// the 255 bytes a file name may have, with room for the version.
pub const MAX_PACKAGE_NAME: usize = 128;

/// The longest repository name in a requirement (`hexpm`, `hexpm:acme`, a private name).
pub const MAX_REPOSITORY_NAME: usize = 128;

/// A package name that may be stored and served: an ASCII letter, then ASCII letters, digits
/// and `_`, at most [`MAX_PACKAGE_NAME`] bytes.
pub fn is_valid_package_name(name: &str) -> bool {
    name.len() <= MAX_PACKAGE_NAME
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// hex.pm's rule for publishing a new name: `^[a-z][a-z0-9_]*$`, at least two characters, and
/// the stored rule's length limit.
pub fn is_new_package_name(name: &str) -> bool {
    name.len() >= 2
        && is_valid_package_name(name)
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A repository name as requirements carry it: ASCII letters, digits, `_`, `-`, `.` and `:`
/// (`hexpm:acme` names an organization), not starting with `.` or `:`, at most
/// [`MAX_REPOSITORY_NAME`] bytes.
pub fn is_valid_repository_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_REPOSITORY_NAME
        && !name.starts_with(['.', ':'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_allow_what_exists_and_new_names_follow_hex_pm() {
        for ok in ["a", "Phoenix_Live", "x1", "pkg_00500"] {
            assert!(is_valid_package_name(ok), "{ok}");
        }
        for bad in ["", "1x", "_x", "a-b", "a.b", "../x", "a b", "é"] {
            assert!(!is_valid_package_name(bad), "{bad}");
        }
        assert!(is_valid_package_name(&"a".repeat(MAX_PACKAGE_NAME)));
        assert!(!is_valid_package_name(&"a".repeat(MAX_PACKAGE_NAME + 1)));
        assert!(!is_valid_package_name(&"a".repeat(300)));

        assert!(is_new_package_name("ab") && is_new_package_name("plug_cowboy2"));
        for bad in ["a", "Ab", "aB", &"a".repeat(200)] {
            assert!(!is_new_package_name(bad), "{bad}");
        }
    }

    #[test]
    fn repository_names() {
        for ok in ["hexpm", "hexpm:acme", "my-repo.internal", "a_b"] {
            assert!(is_valid_repository_name(ok), "{ok}");
        }
        for bad in ["", ".hidden", ":x", "a/b", "a b", "../x", &"r".repeat(129)] {
            assert!(!is_valid_repository_name(bad), "{bad}");
        }
    }
}
