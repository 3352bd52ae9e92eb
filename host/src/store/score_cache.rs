//! The latest score of each account, with its trend, kept in memory so
//! `GET health-score` does not go to PostgreSQL for every read.
//!
//! Every change to the score history — by this host, by another host
//! sharing the store, or by hand behind the hosts' backs — fires a
//! statement trigger (migration 0005) that notifies the channel
//! [`SCORES_CHANNEL`] with the table's schema and the accounts it touched;
//! each host listens on it and drops those accounts from its cache
//! (changes in other schemas of the same database are not its own). The evaluator of this host
//! also keeps the accounts it is writing out of the cache from before its
//! commit until after it, so a client reading from the host that
//! evaluated sees the new score at once; a read from another host may
//! trail a write by the notification's delivery. No entry is served more
//! than a second after it was read, so a notification lost without the
//! host noticing costs a second of staleness at most; an entry read again
//! while it is older than three quarters of that is read anew from the
//! store in the background (kept only if the read it replaces is still
//! held), so under steady reads an account is replaced
//! before it expires and no request waits for the store (a request that
//! did was the tail of `GET health-score`'s latency). While the host is
//! not listening (before the first `LISTEN`, after the connection dropped)
//! the cache is not used at all: reads go to the store, and nothing is
//! kept.
//!
//! SQLite has no cache: its reads never leave the process, and another
//! process writing the same file could not be noticed without a query.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sqlx::postgres::PgListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use super::{ScoreState, Store, StoreError};

/// The channel the score triggers notify.
pub const SCORES_CHANNEL: &str = "vigil_scores";

/// Accounts kept at most; past it the cache starts again from empty, so a
/// portfolio larger than this still reads correctly, only less of it
/// from memory.
const MAX_ACCOUNTS: usize = 100_000;

/// How long to wait before listening again after the listener failed.
const RETRY: Duration = Duration::from_secs(1);

/// How long an entry is served at most. Notifications are what keeps the
/// cache current; this bounds what a lost one could cost (a listener's
/// connection cut without the host noticing), at one store read per
/// account and second under load.
const MAX_AGE: Duration = Duration::from_secs(1);

/// The age past which a read served from memory also reads the entry
/// again from the store in the background: an account read more often
/// than every quarter of [`MAX_AGE`] is replaced before it expires (when
/// the store answers within that quarter and the account's scores did not
/// change meanwhile), at one store read per account and 0.75 s.
const REFRESH_AFTER: Duration = Duration::from_millis(750);

/// Background reads in flight at most: when the store is slow they wait
/// for its connections beside the requests' reads, so they are few; an
/// entry whose read finds none free is served as it is and expires.
const MAX_REFRESHES: usize = 2;

/// A latest score and its change against each baseline.
pub type ScoreWithTrend = (ScoreState, [Option<f64>; 3]);

/// Where a read was answered from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// Memory: read before, and unchanged since.
    Cache,
    /// The store.
    Store,
}

impl ReadFrom {
    /// `cache` or `store`.
    pub fn name(self) -> &'static str {
        match self {
            ReadFrom::Cache => "cache",
            ReadFrom::Store => "store",
        }
    }
}

/// `(score name, baseline ages)`: one read of an account.
type ReadKey = (String, [i64; 3]);

/// One read held: which read it is, when it began, what it read, and
/// whether a read of it in the background has begun (at most one at a
/// time; one that fails or is not kept leaves it set, so the entry expires
/// and the next request reads the store itself).
#[derive(Debug)]
struct Held {
    id: u64,
    read_at: Instant,
    read: ScoreWithTrend,
    refreshing: AtomicBool,
}

/// What the cache holds, under one lock.
#[derive(Debug, Default)]
struct Entries {
    /// Per account, what was read and when.
    by_account: HashMap<String, HashMap<ReadKey, Held>>,
    /// Accounts whose scores this host is writing, with how many writes:
    /// not served from memory nor kept meanwhile.
    writing: HashMap<String, usize>,
    /// Bumped by every invalidation, so a read that began before one does
    /// not keep what it read.
    generation: u64,
    /// The id of the last read held.
    last_id: u64,
}

impl Entries {
    fn forget(&mut self, accounts: &[String]) {
        // No account, nothing changed: reads in flight may still be kept.
        if accounts.is_empty() {
            return;
        }
        self.generation += 1;
        for account in accounts {
            self.by_account.remove(account);
        }
    }

    fn forget_all(&mut self) {
        self.generation += 1;
        self.by_account.clear();
    }
}

/// A notification's payload (migration 0005).
#[derive(Debug, serde::Deserialize)]
struct ScoresChanged {
    /// The schema of the table that changed.
    schema: String,
    /// The accounts whose scores changed; `None` for every account.
    accounts: Option<Vec<String>>,
}

/// The latest scores read from the store since the score history of
/// their account last changed (see the module's documentation for when
/// it is used).
#[derive(Debug)]
pub struct LatestScoreCache {
    /// Whether this host is listening for score changes, so that what the
    /// cache holds is known to be current.
    listening: AtomicBool,
    entries: RwLock<Entries>,
    /// Permits for background reads ([`MAX_REFRESHES`]).
    refreshes: Arc<Semaphore>,
}

impl Default for LatestScoreCache {
    fn default() -> Self {
        Self {
            listening: AtomicBool::default(),
            entries: RwLock::default(),
            refreshes: Arc::new(Semaphore::new(MAX_REFRESHES)),
        }
    }
}

impl LatestScoreCache {
    /// An empty cache, not in use until [`Self::listen`] has subscribed.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// The newest score called `name` of `account_id` with its change
    /// against the newest one at least each of `ages_ms` older, as
    /// [`Store::latest_score_with_trend`] reads it: from memory when it
    /// was read since the account's scores last changed, otherwise from
    /// `store`; and which of the two answered.
    pub async fn latest_score_with_trend(
        self: &Arc<Self>,
        store: &Store,
        account_id: &str,
        name: &str,
        ages_ms: [i64; 3],
    ) -> Result<(Option<ScoreWithTrend>, ReadFrom), StoreError> {
        let key: ReadKey = (name.to_string(), ages_ms);
        let mut generation = None;
        if self.listening.load(Ordering::Acquire)
            && let Ok(entries) = self.entries.read()
            && !entries.writing.contains_key(account_id)
        {
            if let Some(held) = entries
                .by_account
                .get(account_id)
                .and_then(|reads| reads.get(&key))
            {
                let age = held.read_at.elapsed();
                if age < MAX_AGE {
                    let hit = held.read.clone();
                    let refresh = if age >= REFRESH_AFTER
                        && !held.refreshing.load(Ordering::Relaxed)
                        && let Ok(permit) = Arc::clone(&self.refreshes).try_acquire_owned()
                        && held
                            .refreshing
                            .compare_exchange(false, true, Ordering::Relaxed, Ordering::Relaxed)
                            .is_ok()
                    {
                        Some((permit, held.id))
                    } else {
                        None
                    };
                    drop(entries);
                    if let Some((permit, id)) = refresh {
                        self.refresh(store, account_id, key, id, permit);
                    }
                    return Ok((Some(hit), ReadFrom::Cache));
                }
            }
            generation = Some(entries.generation);
        }
        let read_at = Instant::now();
        let read = store
            .latest_score_with_trend(account_id, name, ages_ms)
            .await?;
        // Kept only if nothing was invalidated since the lookup (checked
        // under the lock, so no invalidation comes between) and the host
        // still listens.
        if let (Some(found), Some(generation)) = (&read, generation)
            && let Ok(mut entries) = self.entries.write()
            && entries.generation == generation
        {
            self.hold(&mut entries, account_id, key, read_at, found.clone());
        }
        Ok((read, ReadFrom::Store))
    }

    /// Holds `read`, begun at `read_at`, for `account_id` and `key`, if the
    /// host still listens.
    fn hold(
        &self,
        entries: &mut Entries,
        account_id: &str,
        key: ReadKey,
        read_at: Instant,
        read: ScoreWithTrend,
    ) {
        if !self.listening.load(Ordering::Acquire) {
            return;
        }
        if entries.by_account.len() >= MAX_ACCOUNTS {
            entries.by_account.clear();
        }
        entries.last_id += 1;
        let held = Held {
            id: entries.last_id,
            read_at,
            read,
            refreshing: AtomicBool::new(false),
        };
        entries
            .by_account
            .entry(account_id.to_string())
            .or_default()
            .insert(key, held);
    }

    /// Reads `account_id`'s `key` from `store` again on a task of its own,
    /// holding `permit`, and replaces the held read `id` with it if that
    /// read is still held when it is done: every change to the account's
    /// scores, and every write of them by this host, drops what is held
    /// for it, so a read still held means none came between. Outside a
    /// tokio runtime nothing is read, and the entry expires as it would
    /// have.
    fn refresh(
        self: &Arc<Self>,
        store: &Store,
        account_id: &str,
        key: ReadKey,
        id: u64,
        permit: OwnedSemaphorePermit,
    ) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (cache, store, account_id) = (Arc::clone(self), store.clone(), account_id.to_string());
        runtime.spawn(async move {
            let read_at = Instant::now();
            let (name, ages_ms) = (&key.0, key.1);
            let read = store
                .latest_score_with_trend(&account_id, name, ages_ms)
                .await;
            drop(permit);
            match read {
                Ok(Some(found)) => {
                    cache.replace_held(&account_id, key, id, read_at, found);
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::debug!(%error, account = %account_id, "reading a held score again failed; it expires");
                }
            }
        });
    }

    /// Replaces the held read `id` of `account_id`'s `key` with `read`,
    /// begun at `read_at`, if it is still held; whether it was.
    fn replace_held(
        &self,
        account_id: &str,
        key: ReadKey,
        id: u64,
        read_at: Instant,
        read: ScoreWithTrend,
    ) -> bool {
        let Ok(mut entries) = self.entries.write() else {
            return false;
        };
        let still_held = entries
            .by_account
            .get(account_id)
            .and_then(|reads| reads.get(&key))
            .is_some_and(|held| held.id == id);
        if still_held {
            self.hold(&mut entries, account_id, key, read_at, read);
        }
        still_held
    }

    /// Forgets everything held: the whole score history may have changed.
    pub fn invalidate(&self) {
        if let Ok(mut entries) = self.entries.write() {
            entries.forget_all();
        }
    }

    /// Forgets what is held for `accounts`: their scores changed.
    pub fn invalidate_accounts(&self, accounts: &[String]) {
        if let Ok(mut entries) = self.entries.write() {
            entries.forget(accounts);
        }
    }

    /// Marks a write to the scores of `accounts` by this host, from before
    /// its transaction begins until the guard is dropped after it
    /// committed (or failed): meanwhile their reads go to the store and
    /// are not kept, and what was held for them is forgotten at both ends.
    pub fn writing(&self, accounts: Vec<String>) -> ScoreWrite<'_> {
        // An evaluation that wrote no score takes no lock.
        if !accounts.is_empty()
            && let Ok(mut entries) = self.entries.write()
        {
            for account in &accounts {
                *entries.writing.entry(account.clone()).or_default() += 1;
            }
            entries.forget(&accounts);
        }
        ScoreWrite {
            cache: self,
            accounts,
        }
    }

    /// Accounts with reads held now.
    pub fn len(&self) -> usize {
        self.entries
            .read()
            .map_or(0, |entries| entries.by_account.len())
    }

    /// Whether it holds a read of `account_id`.
    pub fn holds(&self, account_id: &str) -> bool {
        self.entries
            .read()
            .is_ok_and(|entries| entries.by_account.contains_key(account_id))
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether reads are served from memory (this host is listening for
    /// changes).
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    fn set_listening(&self, listening: bool) {
        // Emptied when it starts being used and when it stops: an entry
        // from before the subscription may have missed a change.
        self.invalidate();
        self.listening.store(listening, Ordering::Release);
        self.invalidate();
    }

    /// What a notification's payload says changed, for a host whose tables
    /// are in `schema` (`None`: not known, so every change counts): the
    /// accounts named, every account when none are, and nothing when the
    /// change was in another schema of the same database. A payload that
    /// cannot be read counts as every account.
    fn notified(&self, payload: &str, schema: Option<&str>) {
        match serde_json::from_str::<ScoresChanged>(payload) {
            Ok(changed) if schema.is_some_and(|ours| ours != changed.schema) => {}
            Ok(ScoresChanged {
                accounts: Some(accounts),
                ..
            }) => self.invalidate_accounts(&accounts),
            _ => self.invalidate(),
        }
    }

    /// Listens for changes to the score history in `store` (PostgreSQL)
    /// and uses the cache while subscribed; `None` for SQLite, whose
    /// reads do not use it. The task runs until aborted.
    pub fn listen(self: &Arc<Self>, store: &Store) -> Option<JoinHandle<()>> {
        let Store::Postgres(pool) = store else {
            return None;
        };
        let pool = pool.clone();
        let cache = self.clone();
        Some(tokio::spawn(async move {
            loop {
                // Hosts on other schemas of the same database notify the
                // same channel: their changes are not this host's.
                let subscribed = async {
                    let schema: Option<String> =
                        sqlx::query_scalar("SELECT current_schema()::text")
                            .fetch_one(&pool)
                            .await?;
                    let mut listener = PgListener::connect_with(&pool).await?;
                    listener.listen(SCORES_CHANNEL).await?;
                    Ok::<_, sqlx::Error>((listener, schema))
                }
                .await;
                let (mut listener, schema) = match subscribed {
                    Ok(listener) => listener,
                    Err(error) => {
                        tracing::warn!(%error, "cannot listen for score changes; reading scores from the store");
                        tokio::time::sleep(RETRY).await;
                        continue;
                    }
                };
                cache.set_listening(true);
                loop {
                    match listener.try_recv().await {
                        Ok(Some(notification)) => {
                            cache.notified(notification.payload(), schema.as_deref());
                        }
                        // The connection dropped and was made again (and
                        // subscribed again): what changed meanwhile was
                        // not heard.
                        Ok(None) => cache.invalidate(),
                        Err(error) => {
                            tracing::warn!(%error, "lost the score change listener; reading scores from the store");
                            break;
                        }
                    }
                }
                cache.set_listening(false);
                tokio::time::sleep(RETRY).await;
            }
        }))
    }
}

/// A score write in progress (see [`LatestScoreCache::writing`]).
#[derive(Debug)]
pub struct ScoreWrite<'c> {
    cache: &'c LatestScoreCache,
    accounts: Vec<String>,
}

impl Drop for ScoreWrite<'_> {
    fn drop(&mut self) {
        if !self.accounts.is_empty()
            && let Ok(mut entries) = self.cache.entries.write()
        {
            for account in &self.accounts {
                if let Some(count) = entries.writing.get_mut(account) {
                    *count -= 1;
                    if *count == 0 {
                        entries.writing.remove(account);
                    }
                }
            }
            entries.forget(&self.accounts);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_names_the_accounts_to_forget_or_every_account_of_its_schema() {
        let cache = LatestScoreCache::default();
        let held = |entries: &mut Entries, account: &str| {
            entries.by_account.entry(account.to_string()).or_default();
        };
        if let Ok(mut entries) = cache.entries.write() {
            for account in ["a", "b", "c"] {
                held(&mut entries, account);
            }
        }
        let ours = Some("vigil");
        cache.notified(r#"{"schema": "elsewhere", "accounts": ["a"]}"#, ours);
        assert_eq!(cache.len(), 3, "another schema's change counted");
        cache.notified(r#"{"schema": "vigil", "accounts": ["a", "c"]}"#, ours);
        assert_eq!(cache.len(), 1);
        cache.notified(r#"{"schema": "vigil", "accounts": null}"#, ours);
        assert!(cache.is_empty());
    }

    /// A read of `value` for test scores.
    fn read_of(value: f64) -> ScoreWithTrend {
        let card = crate::runtime::ScoreCard {
            name: "health".into(),
            value,
            band: "stable".into(),
            rag: crate::runtime::bindings::types::Rag::Green,
            factors: Vec::new(),
        };
        let score = ScoreState {
            card: Arc::new(card),
            plugin: crate::runtime::PluginRef::new("health-score", "1.0.0", "digest"),
            computed_at: 0,
            stale: false,
        };
        (score, [None; 3])
    }

    /// The id and value of what `cache` holds for `account`'s health read.
    fn held(cache: &LatestScoreCache, account: &str) -> Option<(u64, f64)> {
        let entries = cache.entries.read().ok()?;
        let held = entries.by_account.get(account)?.get(&key())?;
        Some((held.id, held.read.0.card.value))
    }

    fn key() -> ReadKey {
        ("health".to_string(), [1, 2, 3])
    }

    #[test]
    fn a_read_again_in_the_background_replaces_its_entry_only_while_the_account_is_unchanged() {
        let cache = LatestScoreCache::default();
        cache.listening.store(true, Ordering::Release);
        let hold = |account: &str, value: f64| {
            if let Ok(mut entries) = cache.entries.write() {
                cache.hold(&mut entries, account, key(), Instant::now(), read_of(value));
            }
        };
        hold("a", 50.0);
        hold("b", 60.0);
        let (first, _) = held(&cache, "a").unwrap();

        // Another account's change does not stop it.
        cache.invalidate_accounts(&["b".to_string()]);
        assert!(cache.replace_held("a", key(), first, Instant::now(), read_of(51.0)));
        let (second, value) = held(&cache, "a").unwrap();
        assert_eq!(value, 51.0);
        assert_ne!(second, first, "the new read is held under a new id");

        // A read of what is no longer held is not kept: the entry was
        // replaced meanwhile ...
        assert!(!cache.replace_held("a", key(), first, Instant::now(), read_of(52.0)));
        assert_eq!(held(&cache, "a"), Some((second, 51.0)));
        // ... or the account changed ...
        cache.invalidate_accounts(&["a".to_string()]);
        assert!(!cache.replace_held("a", key(), second, Instant::now(), read_of(53.0)));
        assert_eq!(held(&cache, "a"), None);
        // ... or this host began writing its scores.
        hold("a", 54.0);
        let (third, _) = held(&cache, "a").unwrap();
        let write = cache.writing(vec!["a".into()]);
        assert!(!cache.replace_held("a", key(), third, Instant::now(), read_of(55.0)));
        drop(write);
        assert_eq!(held(&cache, "a"), None);
    }

    #[test]
    fn an_account_being_written_is_not_kept_until_the_write_ends() {
        let cache = LatestScoreCache::default();
        let write = cache.writing(vec!["a".into()]);
        let writing = |cache: &LatestScoreCache| {
            cache
                .entries
                .read()
                .map(|entries| entries.writing.contains_key("a"))
                .unwrap_or(false)
        };
        let nested = cache.writing(vec!["a".into()]);
        drop(write);
        assert!(
            writing(&cache),
            "another write of the account is still going"
        );
        drop(nested);
        assert!(!writing(&cache));
    }
}
