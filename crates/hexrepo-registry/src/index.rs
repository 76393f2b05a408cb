//! The `versions` and `names` entries of one package, derived from its `packages/NAME` payload,
//! so every writer (build, retire, publish, revert) updates the indexes the same way
//! (HEX-PROTOCOL.md §2.2–2.3).

use hexfmt::proto::names::{self, Names};
use hexfmt::proto::package::Package;
use hexfmt::proto::versions::{self, Versions};

/// 0-based indexes of the retired releases, as `versions` records them.
pub fn retired_indexes(package: &Package) -> Vec<i32> {
    package
        .releases
        .iter()
        .enumerate()
        .filter(|(_, r)| r.retired.is_some())
        .map(|(i, _)| i32::try_from(i).expect("fewer than 2^31 releases"))
        .collect()
}

/// Puts `package`'s versions and retirements into `index`, keeping packages sorted by name;
/// removes the entry when the package has no releases left.
pub fn update_versions(index: &mut Versions, package: &Package) {
    let position = index
        .packages
        .binary_search_by(|p| p.name.as_str().cmp(&package.name));
    if package.releases.is_empty() {
        if let Ok(i) = position {
            index.packages.remove(i);
        }
        return;
    }
    let entry = versions::Package {
        name: package.name.clone(),
        versions: package.releases.iter().map(|r| r.version.clone()).collect(),
        retired: retired_indexes(package),
        with_advisories: Vec::new(),
    };
    match position {
        Ok(i) => index.packages[i] = entry,
        Err(i) => index.packages.insert(i, entry),
    }
}

/// Records `name` as updated at `seconds` in `index`, or removes it when `seconds` is `None`.
pub fn update_names(index: &mut Names, name: &str, seconds: Option<i64>) {
    let position = index
        .packages
        .binary_search_by(|p| p.name.as_str().cmp(name));
    match (position, seconds) {
        (Ok(i), None) => {
            index.packages.remove(i);
        }
        (Err(_), None) => {}
        (found, Some(seconds)) => {
            let entry = names::Package {
                name: name.to_owned(),
                updated_at: Some(names::Timestamp { seconds, nanos: 0 }),
            };
            match found {
                Ok(i) => index.packages[i] = entry,
                Err(i) => index.packages.insert(i, entry),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use hexfmt::proto::package::{Release, RetirementStatus};

    use super::*;

    fn release(version: &str, retired: bool) -> Release {
        Release {
            version: version.into(),
            retired: retired.then_some(RetirementStatus {
                reason: 0,
                message: None,
            }),
            ..Release::default()
        }
    }

    #[test]
    fn versions_entries_are_inserted_sorted_replaced_and_removed() {
        let mut index = Versions {
            packages: Vec::new(),
            repository: "acme".into(),
        };
        let mut b = Package {
            name: "b".into(),
            releases: vec![release("1.0.0", false)],
            ..Package::default()
        };
        let a = Package {
            name: "a".into(),
            releases: vec![release("0.1.0", false), release("0.2.0", true)],
            ..Package::default()
        };
        update_versions(&mut index, &b);
        update_versions(&mut index, &a);
        assert_eq!(
            index
                .packages
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(index.packages[0].retired, [1]);
        b.releases.clear();
        update_versions(&mut index, &b);
        assert_eq!(index.packages.len(), 1);
    }

    #[test]
    fn names_entries_are_inserted_sorted_and_removed() {
        let mut index = Names {
            packages: Vec::new(),
            repository: "acme".into(),
        };
        update_names(&mut index, "b", Some(2));
        update_names(&mut index, "a", Some(1));
        update_names(&mut index, "b", Some(3));
        assert_eq!(index.packages.len(), 2);
        assert_eq!(index.packages[1].updated_at.unwrap().seconds, 3);
        update_names(&mut index, "a", None);
        assert_eq!(index.packages[0].name, "b");
    }
}
