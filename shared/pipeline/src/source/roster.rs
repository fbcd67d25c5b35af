//! Which voice samples belong to which worker. Samples are grouped by their owner (the sample
//! folder's name, or a file's name without extension) and matched to the roster by name (case-
//! and space-insensitive) or by worker id (DESIGN §5). Without a roster, the owners are the
//! workers and their names their ids.

use super::SampleFile;

/// A worker as the customer's roster has it (`workers` table, or local `workers.csv`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    pub id: String,
    pub name: String,
}

/// One worker with the samples found for them (possibly none).
#[derive(Debug, Clone)]
pub struct EmployeeSamples {
    pub worker_id: String,
    pub name: String,
    pub samples: Vec<SampleFile>,
}

#[derive(Debug, Clone, Default)]
pub struct Assignment {
    pub workers: Vec<EmployeeSamples>,
    /// Sample owners that match nobody on the roster (their samples are not used).
    pub unmatched: Vec<String>,
}

impl Assignment {
    pub fn with_samples(&self) -> impl Iterator<Item = &EmployeeSamples> {
        self.workers.iter().filter(|w| !w.samples.is_empty())
    }
}

/// Names compare case- and space-insensitively.
pub fn name_key(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

pub fn assign(roster: Option<&[RosterEntry]>, samples: &[SampleFile]) -> Assignment {
    let mut groups: Vec<(String, Vec<SampleFile>)> = Vec::new();
    for sample in samples {
        match groups
            .iter_mut()
            .find(|(owner, _)| name_key(owner) == name_key(&sample.owner))
        {
            Some((_, files)) => files.push(sample.clone()),
            None => groups.push((sample.owner.clone(), vec![sample.clone()])),
        }
    }
    let Some(roster) = roster else {
        return Assignment {
            workers: groups
                .into_iter()
                .map(|(name, samples)| EmployeeSamples {
                    worker_id: name.clone(),
                    name,
                    samples,
                })
                .collect(),
            unmatched: Vec::new(),
        };
    };
    let owner_of = |entry: &RosterEntry, owner: &str| {
        name_key(owner) == name_key(&entry.name) || name_key(owner) == name_key(&entry.id)
    };
    let workers = roster
        .iter()
        .map(|entry| EmployeeSamples {
            worker_id: entry.id.trim().to_string(),
            name: entry.name.trim().to_string(),
            samples: groups
                .iter()
                .find(|(owner, _)| owner_of(entry, owner))
                .map(|(_, files)| files.clone())
                .unwrap_or_default(),
        })
        .collect();
    let unmatched = groups
        .into_iter()
        .filter(|(owner, _)| !roster.iter().any(|entry| owner_of(entry, owner)))
        .map(|(owner, _)| owner)
        .collect();
    Assignment { workers, unmatched }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(owner: &str, name: &str) -> SampleFile {
        SampleFile {
            owner: owner.into(),
            name: name.into(),
            checksum: format!("md5-{name}"),
            size: 1,
            address: name.into(),
        }
    }

    #[test]
    fn samples_go_to_workers_by_name_or_id() {
        let roster = [
            RosterEntry {
                id: "w-1".into(),
                name: "Mary Ann".into(),
            },
            RosterEntry {
                id: "w-2".into(),
                name: "Bob".into(),
            },
            RosterEntry {
                id: "w-3".into(),
                name: "Nobody".into(),
            },
        ];
        let samples = [
            sample("maryann", "a.wav"),
            sample("MARY ANN", "b.wav"),
            sample("w-2", "c.wav"),
            sample("Stranger", "d.wav"),
        ];
        let a = assign(Some(&roster), &samples);
        let files = |i: usize| -> Vec<&str> {
            a.workers[i]
                .samples
                .iter()
                .map(|s| s.name.as_str())
                .collect()
        };
        assert_eq!(files(0), ["a.wav", "b.wav"]);
        assert_eq!(files(1), ["c.wav"]);
        assert!(files(2).is_empty());
        assert_eq!(a.unmatched, ["Stranger"]);
        assert_eq!(a.with_samples().count(), 2);
    }

    #[test]
    fn without_a_roster_the_owners_are_the_workers() {
        let a = assign(None, &[sample("Ann", "a.wav"), sample("ann", "b.wav")]);
        assert_eq!(a.workers.len(), 1);
        assert_eq!(a.workers[0].worker_id, "Ann");
        assert_eq!(a.workers[0].samples.len(), 2);
    }
}
