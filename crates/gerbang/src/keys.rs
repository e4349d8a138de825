//! Where the personal-data key comes from. In order: `privacy.key`, `privacy.key_file`, and — in the
//! development profile only — `personal-data.key` in the data directory, generated on first start
//! with a loud warning. The production profile refuses to start without a configured key.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use gerbang_store::PersonalDataKey;
use secrecy::ExposeSecret;

use crate::config::{Config, Profile};

/// Name of the development key file inside the data directory.
pub const DEVELOPMENT_KEY_FILE: &str = "personal-data.key";

/// How the key was found, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    Configured,
    KeyFile(PathBuf),
    DevelopmentFile(PathBuf),
    /// Generated just now: the data it seals is unreadable without this file.
    GeneratedForDevelopment(PathBuf),
}

pub fn personal_data_key(config: &Config) -> anyhow::Result<(PersonalDataKey, KeyOrigin)> {
    if let Some(key) = &config.privacy.key {
        let key = PersonalDataKey::from_base64(key.expose_secret())
            .context("privacy.key is not usable")?;
        return Ok((key, KeyOrigin::Configured));
    }
    if let Some(path) = &config.privacy.key_file {
        return Ok((read_key_file(path)?, KeyOrigin::KeyFile(path.clone())));
    }
    if config.profile == Profile::Production {
        bail!(
            "the production profile needs a personal-data key: generate one with `gerbang key generate`, keep it in \
             your secret store and pass it as GERBANG_PRIVACY__KEY (or privacy.key_file)"
        );
    }
    let path = config.storage.data_dir.join(DEVELOPMENT_KEY_FILE);
    if path.exists() {
        return Ok((read_key_file(&path)?, KeyOrigin::DevelopmentFile(path)));
    }
    std::fs::create_dir_all(&config.storage.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.storage.data_dir.display()
        )
    })?;
    let key = PersonalDataKey::generate();
    write_key_file(&path, &key)?;
    Ok((key, KeyOrigin::GeneratedForDevelopment(path)))
}

/// The previous personal-data key, set only while a key rotation runs (`privacy.previous_key` or
/// `privacy.previous_key_file`).
pub fn previous_personal_data_key(config: &Config) -> anyhow::Result<Option<PersonalDataKey>> {
    if let Some(key) = &config.privacy.previous_key {
        let key = PersonalDataKey::from_base64(key.expose_secret())
            .context("privacy.previous_key is not usable")?;
        return Ok(Some(key));
    }
    match &config.privacy.previous_key_file {
        Some(path) => read_key_file(path).map(Some),
        None => Ok(None),
    }
}

fn read_key_file(path: &Path) -> anyhow::Result<PersonalDataKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the personal-data key file {}", path.display()))?;
    PersonalDataKey::from_base64(&text)
        .with_context(|| format!("the key file {} holds no usable key", path.display()))
}

fn write_key_file(path: &Path, key: &PersonalDataKey) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create the key file {}", path.display()))?;
    writeln!(file, "{}", key.expose_base64())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write the key file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Overrides, load};

    fn config_in(dir: &Path, vars: &[(&str, &str)]) -> Config {
        let mut vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        vars.push((
            "GERBANG_STORAGE__DATA_DIR".into(),
            dir.display().to_string(),
        ));
        load(None, vars, &Overrides::default()).unwrap().config
    }

    #[test]
    fn development_generates_a_key_once_and_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let (first, origin) = personal_data_key(&config_in(dir.path(), &[])).unwrap();
        assert!(matches!(origin, KeyOrigin::GeneratedForDevelopment(_)));
        let (second, origin) = personal_data_key(&config_in(dir.path(), &[])).unwrap();
        assert!(matches!(origin, KeyOrigin::DevelopmentFile(_)));
        assert_eq!(first.expose_base64(), second.expose_base64());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(DEVELOPMENT_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn production_refuses_to_start_without_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let error = personal_data_key(&config_in(dir.path(), &[("GERBANG_PROFILE", "production")]))
            .unwrap_err();
        assert!(
            error.to_string().contains("GERBANG_PRIVACY__KEY"),
            "{error}"
        );
        assert!(!dir.path().join(DEVELOPMENT_KEY_FILE).exists());
    }

    #[test]
    fn a_configured_key_wins_and_a_bad_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let key = PersonalDataKey::generate().expose_base64();
        let (found, origin) = personal_data_key(&config_in(
            dir.path(),
            &[
                ("GERBANG_PROFILE", "production"),
                ("GERBANG_PRIVACY__KEY", &key),
            ],
        ))
        .unwrap();
        assert_eq!(
            (found.expose_base64(), origin),
            (key, KeyOrigin::Configured)
        );
        let error = personal_data_key(&config_in(
            dir.path(),
            &[("GERBANG_PRIVACY__KEY", "tooshort")],
        ))
        .unwrap_err();
        assert!(format!("{error:#}").contains("privacy.key"), "{error:#}");
    }
}
