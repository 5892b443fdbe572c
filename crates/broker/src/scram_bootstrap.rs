//! `strom serve --add-scram`: the first SCRAM credentials of a secured cluster (Kafka writes
//! them with `kafka-storage format --add-scram`; Strom has no format step, so the broker proposes
//! them itself at start). Each is written only when the user has no credential for that
//! mechanism, so restarting with the same flag never resets a password changed since.

use std::sync::Arc;
use std::time::Duration;

use strom_cluster::metadata::MetadataRecord;
use strom_cluster::{Quorum, QuorumError};
use strom_security::BootstrapScramCredential;

/// How long start-up waits for the quorum before handing the write to a background task (a node
/// of a cluster whose other voters are not up yet must not block its own start).
const INLINE_WAIT: Duration = Duration::from_secs(5);

/// Pause between background attempts.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Proposes the credentials that are absent; returns the users written.
async fn add_absent(
    quorum: &Quorum,
    credentials: &[BootstrapScramCredential],
) -> Result<Vec<String>, QuorumError> {
    let (added, _image) = quorum
        .propose(|image| {
            credentials
                .iter()
                .filter(|c| image.scram_credential(c.mechanism, &c.user).is_none())
                .map(|c| {
                    let record =
                        MetadataRecord::user_scram_credential(&c.user, c.mechanism, &c.credential);
                    (record, format!("{} ({})", c.user, c.mechanism.name()))
                })
                .unzip()
        })
        .await?;
    Ok(added)
}

/// Writes the absent credentials: now when the quorum is ready within [`INLINE_WAIT`], else in
/// the background, retrying until written or the quorum stops. Returns true when written now.
pub async fn add_scram_if_absent(
    quorum: Arc<Quorum>,
    credentials: Vec<BootstrapScramCredential>,
) -> bool {
    if credentials.is_empty() {
        return true;
    }
    if quorum.wait_caught_up(INLINE_WAIT).await.is_ok() {
        match add_absent(&quorum, &credentials).await {
            Ok(added) => {
                tracing::info!(?added, "bootstrap SCRAM credentials written where absent");
                return true;
            }
            Err(e) => tracing::warn!(error = %e, "bootstrap SCRAM credentials not written yet"),
        }
    }
    tokio::spawn(async move {
        loop {
            match add_absent(&quorum, &credentials).await {
                Ok(added) => {
                    tracing::info!(?added, "bootstrap SCRAM credentials written where absent");
                    return;
                }
                Err(QuorumError::Stopped) => return,
                Err(e) => tracing::debug!(error = %e, "bootstrap SCRAM credentials: retrying"),
            }
            tokio::time::sleep(RETRY_EVERY).await;
        }
    });
    false
}
