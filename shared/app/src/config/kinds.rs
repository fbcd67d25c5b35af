//! The settings that choose one of a few ways, as enums: a wrong word is refused when the
//! settings load, naming the variable and the words it takes.

use serde::Deserialize;

/// Declares a setting's enum: its words (lower case, as written in the environment) and the
/// variable named in the error.
macro_rules! choice {
    ($(#[$doc:meta])* $name:ident, $var:literal, { $($(#[$vdoc:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
        #[serde(try_from = "String")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word),+
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;

            fn try_from(word: String) -> Result<Self, String> {
                match word.trim().to_ascii_lowercase().as_str() {
                    $($word => Ok(Self::$variant),)+
                    _ => Err(format!(
                        concat!($var, " must be {}, not `{}`"),
                        [$(concat!("`", $word, "`")),+].join(" or "),
                        word
                    )),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

choice!(
    /// Where clips and voice samples come from (VOICE_SOURCE).
    SourceKind, "VOICE_SOURCE", {
        /// A local folder (VOICE_LOCAL_ROOT).
        Local = "local",
        /// Google Drive (GOOGLE_DRIVE_CREDENTIALS, VOICE_SAMPLES_FOLDER, VOICE_CLIPS_FOLDER).
        Gdrive = "gdrive",
    }
);

choice!(
    /// Where a clip's speaker turns come from (VOICE_DIARIZER).
    DiarizerKind, "VOICE_DIARIZER", {
        /// The built-in diarizer: no network.
        Local = "local",
        /// AssemblyAI's speaker labels (AAI_API_KEY).
        Assemblyai = "assemblyai",
    }
);

choice!(
    /// Where the model runs (VOICE_DEVICE).
    DeviceChoice, "VOICE_DEVICE", {
        /// A GPU when one is found (a build with the `gpu` feature), else the CPU.
        Auto = "auto",
        Cpu = "cpu",
        Cuda = "cuda",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_read_and_a_wrong_one_names_the_variable() {
        assert_eq!(
            SourceKind::try_from("GDrive".to_string()),
            Ok(SourceKind::Gdrive)
        );
        assert_eq!(
            DeviceChoice::try_from("cpu".to_string()),
            Ok(DeviceChoice::Cpu)
        );
        assert_eq!(
            DiarizerKind::try_from("pyannote".to_string()),
            Err("VOICE_DIARIZER must be `local` or `assemblyai`, not `pyannote`".to_string())
        );
    }
}
