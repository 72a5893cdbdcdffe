//! The statement layer on real SQLite files: binding, rows, transactions, the write queue, and
//! waiting out another process's lock without stalling the runtime.

use std::{sync::Arc, time::Duration};

use futures::FutureExt;
use tokio::sync::Mutex;

use super::*;
use crate::error::Error;

/// A database file with one table, and a connection to it.
async fn setup(dir: &tempfile::TempDir) -> (std::path::PathBuf, TenantConn) {
    let file = dir.path().join("t.db");
    std::fs::File::create(&file).unwrap();
    let mut conn = TenantConn::open_local(&file, Arc::default()).await.unwrap();
    query("CREATE TABLE items (id TEXT PRIMARY KEY, name TEXT NOT NULL, size INTEGER, note TEXT)")
        .execute(&mut conn)
        .await
        .unwrap();
    (file, conn)
}

async fn insert(conn: &mut impl Executor, id: &str) -> crate::Result<u64> {
    query("INSERT INTO items (id, name) VALUES ($1, $1)")
        .bind(id)
        .execute(conn)
        .await
}

async fn count(conn: &mut TenantConn) -> i64 {
    query("SELECT count(*) AS n FROM items")
        .fetch_one(conn)
        .await
        .unwrap()
        .try_get("n")
        .unwrap()
}

async fn ids(conn: &mut TenantConn) -> Vec<String> {
    query("SELECT id FROM items ORDER BY id")
        .fetch_all(conn)
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get("id").unwrap())
        .collect()
}

/// What both backends must do alike, on a fresh `items` table: values bound by placeholder
/// number (out of order, one used twice, typed nulls), a write read through `RETURNING`, a
/// dropped transaction rolled back, a unique violation as the conflict asked for.
async fn portable_statements(conn: &mut TenantConn) {
    let changed = query("INSERT INTO items (id, name, size, note) VALUES ($2, $1, $3, $4)")
        .bind("the name")
        .bind("a")
        .bind(None::<i64>)
        .bind(None::<&str>)
        .execute(&mut *conn)
        .await
        .unwrap();
    assert_eq!(changed, 1);
    let row = query(
        "UPDATE items SET size = $1 WHERE id = $2 OR name = $2 RETURNING id, name, size, note",
    )
    .bind(7_i64)
    .bind("a")
    .fetch_optional(&mut *conn)
    .await
    .unwrap()
    .expect("the row");
    assert_eq!(row.try_get::<String>("id").unwrap(), "a");
    assert_eq!(row.try_get::<String>("name").unwrap(), "the name");
    assert_eq!(row.try_get::<Option<i64>>("size").unwrap(), Some(7));
    assert_eq!(row.try_get::<Option<String>>("note").unwrap(), None);
    // Asking for the wrong type or a column not selected is an internal error, not a panic.
    assert!(matches!(
        row.try_get::<i64>("name"),
        Err(Error::Internal(_))
    ));
    assert!(matches!(
        row.try_get::<String>("missing"),
        Err(Error::Internal(_))
    ));

    let mut tx = conn.begin().await.unwrap();
    insert(&mut tx, "dropped").await.unwrap();
    drop(tx);
    let duplicate = query("INSERT INTO items (id, name) VALUES ($1, $1)")
        .bind("a")
        .conflict_on_unique("taken")
        .execute(&mut *conn)
        .await;
    assert!(matches!(duplicate, Err(Error::Conflict(m)) if m == "taken"));
    assert_eq!(count(conn).await, 1, "the dropped transaction rolled back");
}

#[tokio::test]
async fn placeholders_bind_by_number_and_rows_read_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut conn) = setup(&dir).await;
    portable_statements(&mut conn).await;
    // A named placeholder other than `$N` is refused rather than bound by position.
    let named = query("SELECT :name AS a")
        .bind("x")
        .fetch_all(&mut conn)
        .await;
    assert!(matches!(named, Err(Error::Internal(_))));
    // Too few values for the placeholders is refused, not bound as null.
    let short = query("SELECT $1 AS a, $2 AS b")
        .bind("x")
        .fetch_all(&mut conn)
        .await;
    assert!(matches!(short, Err(Error::Internal(_))));
}

#[tokio::test]
async fn a_unique_violation_is_a_conflict_only_where_expected() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut conn) = setup(&dir).await;
    insert(&mut conn, "a").await.unwrap();
    assert!(matches!(
        insert(&mut conn, "a").await,
        Err(Error::Internal(_))
    ));
    let expected = query("INSERT INTO items (id, name) VALUES ($1, $1)")
        .bind("a")
        .conflict_on_unique("taken")
        .execute(&mut conn)
        .await;
    assert!(matches!(expected, Err(Error::Conflict(m)) if m == "taken"));
}

#[tokio::test]
async fn a_transaction_commits_or_rolls_back_when_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut conn) = setup(&dir).await;
    let mut tx = conn.begin().await.unwrap();
    insert(&mut tx, "kept").await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    insert(&mut tx, "dropped").await.unwrap();
    drop(tx);
    assert_eq!(ids(&mut conn).await, ["kept"]);
    // The connection is usable, outside any transaction, and can start another.
    drop(conn.begin().await.unwrap());
}

/// Two connections of one tenant share its write queue: a write waits (without blocking the
/// thread) while the other's transaction is open, and proceeds once it ends.
#[tokio::test(flavor = "current_thread")]
async fn writers_of_one_tenant_queue_without_stalling_the_thread() {
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = setup(&dir).await;
    let writer: Arc<Mutex<()>> = Arc::default();
    let mut first = TenantConn::open_local(&file, writer.clone()).await.unwrap();
    let mut second = TenantConn::open_local(&file, writer.clone()).await.unwrap();
    let mut reader = TenantConn::open_local(&file, writer).await.unwrap();
    let mut tx = first.begin().await.unwrap();
    insert(&mut tx, "first").await.unwrap();
    {
        let mut waiting = Box::pin(insert(&mut second, "second"));
        assert!(
            (&mut waiting).now_or_never().is_none(),
            "queued, not blocked"
        );
        // Reads do not queue.
        assert_eq!(count(&mut reader).await, 0);
        tx.commit().await.unwrap();
        // Its turn comes as the transaction ends, not after a sleep and a retry.
        let written = (&mut waiting).now_or_never().expect("written at once");
        assert_eq!(written.unwrap(), 1);
    }
    assert_eq!(count(&mut second).await, 2);
}

/// A write behind another writer of the same tenant gives up when the wait is over, or at once
/// when asked not to wait (`503` either way, nothing written).
#[tokio::test]
async fn a_write_gives_up_on_the_queue_after_the_wait_or_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = setup(&dir).await;
    let writer: Arc<Mutex<()>> = Arc::default();
    let mut first = TenantConn::open_local(&file, writer.clone()).await.unwrap();
    let mut second = TenantConn::open_local(&file, writer).await.unwrap();
    let tx = first.begin().await.unwrap();
    let at_once = query("INSERT INTO items (id, name) VALUES ('now', 'now')")
        .without_waiting()
        .execute(&mut second)
        .now_or_never()
        .expect("no wait");
    assert!(
        matches!(at_once, Err(Error::TenantUnavailable { .. })),
        "{at_once:?}"
    );
    let started = tokio::time::Instant::now();
    let waited = insert(&mut second, "later").await;
    assert!(
        matches!(waited, Err(Error::TenantUnavailable { .. })),
        "{waited:?}"
    );
    assert!(started.elapsed() >= BUSY_WAIT);
    tx.commit().await.unwrap();
    assert_eq!(count(&mut second).await, 0);
}

/// A request cut off inside a transaction (its future dropped at an await) rolls it back and
/// gives up its place in the queue at once.
#[tokio::test(flavor = "current_thread")]
async fn a_transaction_cut_off_rolls_back_and_leaves_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = setup(&dir).await;
    let writer: Arc<Mutex<()>> = Arc::default();
    let mut first = TenantConn::open_local(&file, writer.clone()).await.unwrap();
    let mut second = TenantConn::open_local(&file, writer).await.unwrap();
    let cut_off = async {
        let mut tx = first.begin().await.unwrap();
        insert(&mut tx, "half-done").await.unwrap();
        futures::future::pending::<()>().await;
    };
    assert!(cut_off.now_or_never().is_none());
    let written = insert(&mut second, "next").now_or_never();
    assert_eq!(written.expect("not queued").unwrap(), 1);
    assert_eq!(ids(&mut first).await, ["next"]);
    assert!(!first.in_transaction());
}

/// A write lock held by another process (here a connection outside the queue) is waited out
/// with async sleeps while other tasks run, and answered 503 if it is held too long.
#[tokio::test(flavor = "current_thread")]
async fn another_process_holding_the_lock_is_waited_out_then_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (file, mut conn) = setup(&dir).await;
    let other = rusqlite::Connection::open(&file).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let release = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        other.execute_batch("COMMIT").unwrap();
    };
    let (written, ()) = tokio::join!(insert(&mut conn, "after"), release);
    assert_eq!(written.unwrap(), 1, "written once the other process let go");

    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = tokio::time::Instant::now();
    let refused = insert(&mut conn, "never").await;
    assert!(
        matches!(refused, Err(Error::TenantUnavailable { .. })),
        "{refused:?}"
    );
    assert!(started.elapsed() >= BUSY_WAIT);
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(count(&mut conn).await, 1);
}

/// The same statements on PostgreSQL, where tenant servers will run. Needs a server
/// (`SILO_TEST_POSTGRES_URL`, default the local one); CI sets `SILO_REQUIRE_POSTGRES=1` so that
/// its absence fails there.
#[tokio::test]
async fn the_same_statements_run_on_postgres() {
    let Some(options) = crate::database::postgres_for_tests().await else {
        return;
    };
    let raw = sqlx::ConnectOptions::connect(&options).await.unwrap();
    let mut conn = TenantConn::Server(raw);
    // A temporary table: this session's own, gone when it ends.
    query(
        "CREATE TEMP TABLE items (id TEXT PRIMARY KEY, name TEXT NOT NULL, size BIGINT, note TEXT)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    portable_statements(&mut conn).await;
    conn.close().await;
}
