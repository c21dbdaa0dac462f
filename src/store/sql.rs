//! The SQL both backends share: one implementation of the [`Store`](super::Store) contract,
//! instantiated for SQLite and for PostgreSQL. Parameters are written `$1, $2…`, which
//! PostgreSQL uses natively and sqlx binds by number on SQLite too; booleans are written
//! `TRUE`/`FALSE`, which SQLite also understands. What differs (connecting, migrations, the
//! read replica, `FOR UPDATE SKIP LOCKED`) stays in each backend's file.

/// `impl Store for $store` over a pool of `$db`; the type needs `pool: Pool<$db>`, a
/// `reader()` pool and a `MIGRATOR` in scope, and `$skip_locked` is appended to the
/// claim's row lock (`" FOR UPDATE SKIP LOCKED"` where the database has it).
macro_rules! sql_store {
    ($store:ident, $db:ty, $skip_locked:expr) => {
        impl $store {
            /// Call-back requests (write index, request, reference, open enquiries allowed per
            /// number), a batch at a time in a handful of statements whatever the batch's size:
            /// each call's own enquiry if it has one (or the one its request joined before);
            /// else, for a number with `max_open` open, folded into its oldest (counted there
            /// as a repeat request); else inserted under its reference (a new one if that is
            /// taken), folding in the number's open missed-in-queue entries and keeping their
            /// earlier waiting time. The enquiry for each write index.
            ///
            /// Requests from one number are taken in turn (rounds: the first from each number,
            /// then the second…), so they see each other exactly as if made one by one.
            async fn callback_requests(
                tx: &mut sqlx::Transaction<'_, $db>,
                keys: &crate::crypto::Keyring,
                requests: &[(usize, &NewEnquiry, &Reference, u32)],
            ) -> Result<std::collections::HashMap<usize, Enquiry>, StoreError> {
                let mut made = std::collections::HashMap::new();
                let mut left: Vec<(usize, &NewEnquiry, &Reference, u32)> = requests.to_vec();
                while !left.is_empty() {
                    let mut seen = std::collections::HashSet::new();
                    let (round, later): (Vec<_>, Vec<_>) = left
                        .into_iter()
                        .partition(|r| seen.insert(r.1.callback_number.e164().to_string()));
                    made.extend(Self::callback_round(tx, keys, &round).await?);
                    left = later;
                }
                Ok(made)
            }

            /// One round of [`Self::callback_requests`]: at most one request per number.
            async fn callback_round(
                tx: &mut sqlx::Transaction<'_, $db>,
                keys: &crate::crypto::Keyring,
                requests: &[(usize, &NewEnquiry, &Reference, u32)],
            ) -> Result<std::collections::HashMap<usize, Enquiry>, StoreError> {
                use std::collections::HashMap;
                let mut made: HashMap<usize, Enquiry> = HashMap::new();
                if requests.is_empty() {
                    return Ok(made);
                }
                let calls: Vec<&str> = requests.iter().map(|r| r.1.call_sid.as_str()).collect();
                // Numbers are stored sealed: found by their lookup hashes (under every key).
                use crate::crypto::Kind;
                let mut number_of: HashMap<String, String> = HashMap::new();
                for r in requests {
                    let number = r.1.callback_number.e164();
                    for h in keys.lookups(Kind::PhoneNumber, number) {
                        number_of.insert(h, number.to_string());
                    }
                }
                let hashes: Vec<&str> = number_of.keys().map(String::as_str).collect();
                let in_list = |q: &mut sqlx::QueryBuilder<'_, $db>, items: &[&str]| {
                    q.push("(");
                    let mut list = q.separated(", ");
                    for item in items {
                        list.push_bind(item.to_string());
                    }
                    q.push(")");
                };
                // The calls' own enquiries (a retried request).
                let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {ENQUIRY_COLUMNS} FROM enquiries WHERE call_sid IN "
                ));
                in_list(&mut q, &calls);
                let own: Vec<EnquiryRow> = q.build_query_as().fetch_all(&mut **tx).await?;
                let mut by_call: HashMap<String, Enquiry> = HashMap::new();
                for row in own {
                    let e = row.open(keys)?;
                    by_call.insert(e.call_sid.clone(), e);
                }
                // Requests folded into another enquiry before.
                let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT f.call_sid AS folded_call, {} FROM enquiry_calls f JOIN enquiries e ON e.id = f.enquiry_id WHERE f.call_sid IN ",
                    ENQUIRY_COLUMNS_OF_E
                ));
                in_list(&mut q, &calls);
                let folded = q.build().fetch_all(&mut **tx).await?;
                for row in &folded {
                    let call: String = row.try_get("folded_call")?;
                    let e = <EnquiryRow as sqlx::FromRow<_>>::from_row(row)?.open(keys)?;
                    by_call.entry(call).or_insert(e);
                }
                // Open enquiries per number.
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "SELECT callback_hash, COUNT(*) FROM enquiries WHERE status IN ",
                );
                q.push(OPEN_STATUSES);
                q.push(" AND callback_hash IN ");
                in_list(&mut q, &hashes);
                q.push(" GROUP BY callback_hash");
                let counts: Vec<(String, i64)> = q.build_query_as().fetch_all(&mut **tx).await?;
                let mut open: HashMap<String, i64> = HashMap::new();
                for (hash, n) in counts {
                    if let Some(number) = number_of.get(&hash) {
                        *open.entry(number.clone()).or_insert(0) += n;
                    }
                }

                let mut to_insert: Vec<(usize, &NewEnquiry, Reference)> = Vec::new();
                for &(i, e, reference, max_open) in requests {
                    if let Some(done) = by_call.get(&e.call_sid) {
                        made.insert(i, done.clone());
                        continue;
                    }
                    let number = e.callback_number.e164();
                    let count = open.entry(number.to_string()).or_insert(0);
                    if *count >= i64::from(max_open.max(1)) {
                        // Too many from one number: joins its oldest open enquiry (rare: a
                        // statement or three of its own).
                        let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                            "SELECT {ENQUIRY_COLUMNS} FROM enquiries WHERE status IN {OPEN_STATUSES} AND callback_hash IN "
                        ));
                        let own: Vec<String> = keys.lookups(Kind::PhoneNumber, number);
                        let own: Vec<&str> = own.iter().map(String::as_str).collect();
                        in_list(&mut q, &own);
                        q.push(" ORDER BY created_at LIMIT 1");
                        let oldest: Option<EnquiryRow> = q.build_query_as().fetch_optional(&mut **tx).await?;
                        if let Some(oldest) = oldest {
                            let oldest = oldest.open(keys)?;
                            let joined = sqlx::query(
                                "INSERT INTO enquiry_calls (call_sid, enquiry_id, at) VALUES ($1, $2, $3) \
                                 ON CONFLICT (call_sid) DO NOTHING",
                            )
                            .bind(&e.call_sid)
                            .bind(&oldest.id)
                            .bind(e.created_at)
                            .execute(&mut **tx)
                            .await?;
                            if joined.rows_affected() == 1 {
                                sqlx::query("UPDATE enquiries SET repeat_requests = repeat_requests + 1 WHERE id = $1")
                                    .bind(&oldest.id)
                                    .execute(&mut **tx)
                                    .await?;
                                tracing::warn!(call_sid = %e.call_sid, enquiry = %oldest.id, max_open,
                                    "call-back request folded into an open enquiry: the number has the most allowed");
                            }
                            by_call.insert(e.call_sid.clone(), oldest.clone());
                            made.insert(i, oldest);
                            continue;
                        }
                    }
                    *count += 1;
                    to_insert.push((i, e, reference.clone()));
                }

                // One statement for them all; a row whose reference is taken is tried again
                // under a new one.
                for attempt in 0..super::REFERENCE_TRIES {
                    if to_insert.is_empty() {
                        break;
                    }
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO enquiries (id, reference, call_sid, callback_number, callback_hash, trust, category, \
                         recording_url, recording_duration, status, created_at, callback_due, source, waiting_since, not_counted) ",
                    );
                    q.push_values(&to_insert, |mut row, (_, e, reference)| {
                        let number = keys.seal_indexed(Kind::PhoneNumber, e.callback_number.e164());
                        row.push_bind(enquiry_id(e.created_at))
                            .push_bind(reference.as_str().to_string())
                            .push_bind(e.call_sid.clone())
                            .push_bind(number.value)
                            .push_bind(number.hash)
                            .push_bind(e.trust.as_str())
                            .push_bind(e.category.as_str())
                            .push_bind(e.recording.as_ref().map(|r| keys.seal(Kind::Recording, &r.url)))
                            .push_bind(e.recording.as_ref().map(|r| i64::from(r.duration_seconds)))
                            .push("'new'")
                            .push_bind(e.created_at)
                            .push_bind(e.callback_due)
                            .push_bind(e.source.as_str())
                            .push_bind(e.waiting_since)
                            .push("COALESCE((SELECT c.simulated OR c.test_call FROM calls c WHERE c.call_sid = ")
                            .push_bind_unseparated(e.call_sid.clone())
                            .push_unseparated("), FALSE)");
                    });
                    q.push(" ON CONFLICT DO NOTHING RETURNING ");
                    q.push(ENQUIRY_COLUMNS);
                    let rows: Vec<EnquiryRow> = q.build_query_as().fetch_all(&mut **tx).await?;
                    let mut stored: HashMap<String, Enquiry> = HashMap::new();
                    for row in rows {
                        let e = row.open(keys)?;
                        stored.insert(e.call_sid.clone(), e);
                    }
                    let mut again = Vec::new();
                    for (i, e, _) in to_insert {
                        if let Some(done) = stored.remove(&e.call_sid) {
                            made.insert(i, done);
                            continue;
                        }
                        // Not inserted: the call's enquiry arrived meanwhile, or the
                        // reference is taken.
                        let existing: Option<EnquiryRow> = sqlx::query_as(&format!(
                            "SELECT {ENQUIRY_COLUMNS} FROM enquiries WHERE call_sid = $1"
                        ))
                        .bind(&e.call_sid)
                        .fetch_optional(&mut **tx)
                        .await?;
                        match existing {
                            Some(row) => {
                                made.insert(i, row.open(keys)?);
                            }
                            None => {
                                tracing::warn!(call_sid = %e.call_sid, attempt, "enquiry reference taken; trying another");
                                again.push((i, e, Reference::random()));
                            }
                        }
                    }
                    to_insert = again;
                }
                if !to_insert.is_empty() {
                    return Err(StoreError::NoFreeReference(super::REFERENCE_TRIES));
                }

                // A caller who gave up in the queue earlier keeps their place: their open
                // missed-in-queue entries are folded into the new request, which takes the
                // earlier time.
                let new: Vec<(usize, String, String)> = requests
                    .iter()
                    .filter_map(|&(i, e, _, _)| {
                        made.get(&i)
                            .filter(|m| m.call_sid == e.call_sid && m.source == crate::enquiries::Source::CallbackRequest)
                            .map(|m| (i, m.callback_number.clone(), m.id.clone()))
                    })
                    .collect();
                if !new.is_empty() {
                    let closed_at = requests.iter().map(|r| r.1.created_at).max();
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "UPDATE enquiries SET status = 'merged', claimed_by = NULL, claimed_at = NULL, closed_at = ",
                    );
                    q.push_bind(closed_at);
                    q.push(" WHERE source = 'missed-in-queue' AND status IN ");
                    q.push(OPEN_STATUSES);
                    q.push(" AND callback_hash IN ");
                    let new_hashes: Vec<String> = new
                        .iter()
                        .flat_map(|n| keys.lookups(Kind::PhoneNumber, &n.1))
                        .collect();
                    let new_hashes: Vec<&str> = new_hashes.iter().map(String::as_str).collect();
                    in_list(&mut q, &new_hashes);
                    q.push(" AND call_sid NOT IN ");
                    in_list(&mut q, &calls);
                    q.push(" RETURNING callback_hash, COALESCE(waiting_since, created_at)");
                    let merged: Vec<(Option<String>, DateTime<Utc>)> =
                        q.build_query_as().fetch_all(&mut **tx).await?;
                    let mut earliest: HashMap<String, DateTime<Utc>> = HashMap::new();
                    for (hash, at) in merged {
                        let Some(number) = hash.and_then(|h| number_of.get(&h).cloned()) else {
                            continue;
                        };
                        let e = earliest.entry(number).or_insert(at);
                        *e = (*e).min(at);
                    }
                    for (i, number, id) in new {
                        let Some(&at) = earliest.get(&number) else { continue };
                        let Some(m) = made.get_mut(&i) else { continue };
                        if at < m.waiting_since {
                            sqlx::query("UPDATE enquiries SET waiting_since = $1 WHERE id = $2")
                                .bind(at)
                                .bind(&id)
                                .execute(&mut **tx)
                                .await?;
                            m.waiting_since = at;
                        }
                    }
                }
                Ok(made)
            }

            /// Every change to closures or the stored calendar bumps the revision, in the same transaction.
            async fn bump_revision(tx: &mut sqlx::Transaction<'_, $db>) -> Result<(), StoreError> {
                sqlx::query("UPDATE hours_revision SET revision = revision + 1 WHERE id = 1")
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl Store for $store {
            async fn apply_writes(&self, writes: &[CallWrite]) -> Result<Vec<super::Applied>, StoreError> {
                use std::collections::HashSet;
                /// Rows per multi-row statement: well within both databases' limits on
                /// bound parameters.
                const ROWS: usize = 400;
                if writes.is_empty() {
                    return Ok(Vec::new());
                }
                let mut calls = Vec::new();
                let mut steps = Vec::new();
                // The last answer of each kind per call wins (one statement cannot update a
                // row twice).
                let mut answers = Latest::last_wins();
                let mut rest = Vec::new();
                let mut requests = Vec::new();
                for (i, w) in writes.iter().enumerate() {
                    match w {
                        CallWrite::Call(c) => calls.push(c),
                        CallWrite::Step(s) => steps.push(s),
                        CallWrite::Answer { call_sid, answer } => {
                            for (name, value) in answer_pairs(answer, &self.keys) {
                                answers.put((call_sid.as_str(), name), value);
                            }
                        }
                        CallWrite::CallbackRequest { enquiry, reference, max_open } => {
                            requests.push((i, enquiry, reference, *max_open))
                        }
                        other => rest.push(other),
                    }
                }
                let mut tx = self.pool.begin().await?;
                for chunk in calls.chunks(ROWS) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO calls (call_sid, caller, caller_hash, started_at, in_hours, simulated, test_call) ",
                    );
                    q.push_values(chunk, |mut row, c| {
                        // The caller's number sealed, with its lookup hash (crate::crypto).
                        let (caller, caller_hash) = self
                            .keys
                            .seal_indexed_opt(crate::crypto::Kind::PhoneNumber, c.caller.as_deref());
                        row.push_bind(&c.call_sid)
                            .push_bind(caller)
                            .push_bind(caller_hash)
                            .push_bind(c.started_at)
                            .push_bind(c.in_hours)
                            .push_bind(c.simulated)
                            .push_bind(c.test_call);
                    });
                    q.push(" ON CONFLICT (call_sid) DO NOTHING");
                    q.build().execute(&mut *tx).await?;
                }
                let mut inserted: HashSet<(String, i64)> = HashSet::new();
                for chunk in steps.chunks(ROWS) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO call_steps (call_sid, seq, node, input, outcome, at, path) ",
                    );
                    q.push_values(chunk, |mut row, s| {
                        row.push_bind(&s.call_sid)
                            .push_bind(i64::from(s.seq))
                            .push_bind(&s.node)
                            .push_bind(&s.input)
                            .push_bind(&s.outcome)
                            .push_bind(s.at)
                            .push_bind(path_column(&s.path));
                    });
                    q.push(" ON CONFLICT (call_sid, seq) DO NOTHING RETURNING call_sid, seq");
                    let new: Vec<(String, i64)> = q.build_query_as().fetch_all(&mut *tx).await?;
                    inserted.extend(new);
                }
                for chunk in answers.rows().chunks(ROWS) {
                    let mut q = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO call_answers (call_sid, name, value) ",
                    );
                    q.push_values(chunk, |mut row, ((call_sid, name), value)| {
                        row.push_bind(*call_sid).push_bind(*name).push_bind(value.as_str());
                    });
                    q.push(" ON CONFLICT (call_sid, name) DO UPDATE SET value = excluded.value");
                    q.build().execute(&mut *tx).await?;
                }
                // Queue joins, leaves and call ends: one statement of each kind for the whole
                // batch, in the order of a call's life (so a call that joined, left and ended
                // within one batch is recorded as if one by one); per call the first join and
                // the last leave and end count, as they would one by one.
                let mut joined = Latest::first_wins();
                let mut left = Latest::last_wins();
                let mut ended = Latest::last_wins();
                for w in rest {
                    match w {
                        CallWrite::QueueJoined { call_sid, at } => joined.put(call_sid, (at, None, None)),
                        CallWrite::QueueLeft { call_sid, result, wait_seconds, at } => {
                            left.put(call_sid, (at, Some(result.as_str()), *wait_seconds))
                        }
                        CallWrite::Ended(end) => {
                            ended.put(&end.call_sid, (&end.at, Some(end.status.as_str()), end.duration_seconds))
                        }
                        CallWrite::Call(_)
                        | CallWrite::Step(_)
                        | CallWrite::Answer { .. }
                        | CallWrite::CallbackRequest { .. } => {}
                    }
                }
                // Each kind's rows are (call, time, word, number): the queue result and wait,
                // or the final status and duration.
                let updates = [
                    (joined.rows(), "queue_joined_at = COALESCE(calls.queue_joined_at, v.t)"),
                    (
                        left.rows(),
                        "queue_left_at = v.t, queue_result = v.word, queue_wait_seconds = v.n, \
                         hung_up_in_queue = (v.word = 'hangup')",
                    ),
                    // A caller still marked as queued (joined, never left) hung up while waiting.
                    (
                        ended.rows(),
                        "ended_at = v.t, final_status = v.word, duration_seconds = v.n, \
                         hung_up_in_queue = CASE WHEN calls.queue_joined_at IS NOT NULL AND calls.queue_left_at IS NULL \
                                                 THEN TRUE ELSE calls.hung_up_in_queue END",
                    ),
                ];
                for (rows, set) in updates {
                    for chunk in rows.chunks(ROWS) {
                        let mut q = sqlx::QueryBuilder::<$db>::new("WITH v (sid, t, word, n) AS (");
                        q.push_values(chunk, |mut row, (sid, (at, word, n))| {
                            row.push_bind(*sid).push_bind(**at).push_bind(*word).push_bind(*n);
                        });
                        q.push(") UPDATE calls SET ");
                        q.push(set);
                        q.push(" FROM v WHERE calls.call_sid = v.sid");
                        q.build().execute(&mut *tx).await?;
                    }
                }
                let mut made = Self::callback_requests(&mut tx, &self.keys, &requests).await?;
                tx.commit().await?;
                // The first write of a step in this batch is the new one; a repeat is a retry.
                writes
                    .iter()
                    .enumerate()
                    .map(|(i, w)| match w {
                        CallWrite::Step(s) => Ok(if inserted.remove(&(s.call_sid.clone(), i64::from(s.seq))) {
                            super::Applied::New
                        } else {
                            super::Applied::Repeat
                        }),
                        CallWrite::CallbackRequest { .. } => made
                            .remove(&i)
                            .map(|e| super::Applied::Enquiry(Box::new(e)))
                            .ok_or_else(|| StoreError::Corrupt("a call-back request came to nothing".into())),
                        _ => Ok(super::Applied::New),
                    })
                    .collect()
            }

            async fn answers(&self, call_sid: &str) -> Result<Answers, StoreError> {
                let pairs: Vec<(String, String)> =
                    sqlx::query_as("SELECT name, value FROM call_answers WHERE call_sid = $1")
                        .bind(call_sid)
                        .fetch_all(&self.pool)
                        .await?;
                answers_from_pairs(pairs, &self.keys)
            }

            async fn create_enquiry_with(
                &self,
                e: &NewEnquiry,
                given: Option<&Reference>,
            ) -> Result<Enquiry, StoreError> {
                use crate::enquiries::Source;
                if let Some(existing) = self.enquiry_for_call(&e.call_sid).await? {
                    return Ok(existing);
                }
                // Sealed once for every try; the number is looked up by its hashes.
                let number = self.keys.seal_indexed(crate::crypto::Kind::PhoneNumber, e.callback_number.e164());
                let recording = e.recording.as_ref().map(|r| self.keys.seal(crate::crypto::Kind::Recording, &r.url));
                let hashes = self.keys.lookups(crate::crypto::Kind::PhoneNumber, e.callback_number.e164());
                for attempt in 0..super::REFERENCE_TRIES {
                    let reference = match given {
                        Some(r) if attempt == 0 => r.clone(),
                        _ => Reference::random(),
                    };
                    let mut tx = self.pool.begin().await?;
                    let inserted = sqlx::query(
                        "INSERT INTO enquiries (id, reference, call_sid, callback_number, trust, category, \
                         recording_url, recording_duration, status, created_at, callback_due, source, waiting_since, callback_hash, not_counted) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'new', $9, $10, $11, $12, $13, \
                         COALESCE((SELECT c.simulated OR c.test_call FROM calls c WHERE c.call_sid = $3), FALSE)) ON CONFLICT (call_sid) DO NOTHING",
                    )
                    .bind(enquiry_id(e.created_at))
                    .bind(reference.as_str())
                    .bind(&e.call_sid)
                    .bind(&number.value)
                    .bind(e.trust.as_str())
                    .bind(e.category.as_str())
                    .bind(&recording)
                    .bind(e.recording.as_ref().map(|r| i64::from(r.duration_seconds)))
                    .bind(e.created_at)
                    .bind(e.callback_due)
                    .bind(e.source.as_str())
                    .bind(e.waiting_since)
                    .bind(&number.hash)
                    .execute(&mut *tx)
                    .await;
                    match inserted {
                        // Inserted now, or already there from an earlier (retried) request.
                        Ok(done) => {
                            // (After the insert, so a SQLite transaction takes the write lock first.)
                            if done.rows_affected() == 1 && e.source == Source::CallbackRequest {
                                // A caller who gave up in the queue earlier keeps their place: the
                                // request takes the earlier time, and the missed entry is folded in.
                                let sql = format!(
                                    "SELECT MIN(COALESCE(waiting_since, created_at)) FROM enquiries \
                                     WHERE callback_hash IN ({}) AND source = 'missed-in-queue' AND status IN {OPEN_STATUSES} \
                                     AND call_sid <> $1",
                                    super::retention::placeholders(2, hashes.len())
                                );
                                let mut q = sqlx::query_scalar(&sql).bind(&e.call_sid);
                                for h in &hashes {
                                    q = q.bind(h);
                                }
                                let earlier: Option<DateTime<Utc>> = q.fetch_one(&mut *tx).await?;
                                if let Some(t) = earlier.filter(|t| *t < e.waiting_since) {
                                    sqlx::query("UPDATE enquiries SET waiting_since = $1 WHERE call_sid = $2")
                                        .bind(t)
                                        .bind(&e.call_sid)
                                        .execute(&mut *tx)
                                        .await?;
                                }
                                let sql = format!(
                                    "UPDATE enquiries SET status = 'merged', closed_at = $1, claimed_by = NULL, claimed_at = NULL \
                                     WHERE callback_hash IN ({}) AND source = 'missed-in-queue' AND status IN {OPEN_STATUSES} \
                                     AND call_sid <> $2",
                                    super::retention::placeholders(3, hashes.len())
                                );
                                let mut q = sqlx::query(&sql).bind(e.created_at).bind(&e.call_sid);
                                for h in &hashes {
                                    q = q.bind(h);
                                }
                                q.execute(&mut *tx).await?;
                            }
                            tx.commit().await?;
                            return self
                                .enquiry_for_call(&e.call_sid)
                                .await?
                                .ok_or_else(|| StoreError::Corrupt("enquiry vanished after insert".into()));
                        }
                        Err(err) if is_unique_violation(&err, "reference") => {
                            if given.is_some() && attempt == 0 {
                                // A reference made while the database was away is taken (one
                                // chance in 900,000 per open enquiry): store it under a new one
                                // rather than lose the request; staff find it by its call.
                                tracing::error!(call_sid = %e.call_sid, reference = %reference,
                                    "the reference the caller was given is taken; stored under a new one");
                            }
                            continue;
                        }
                        Err(err) => return Err(err.into()),
                    }
                }
                Err(StoreError::NoFreeReference(super::REFERENCE_TRIES))
            }

            async fn enquiry_for_call(&self, call_sid: &str) -> Result<Option<Enquiry>, StoreError> {
                let row: Option<EnquiryRow> = sqlx::query_as(&format!(
                    "SELECT {ENQUIRY_COLUMNS} FROM enquiries WHERE call_sid = $1 \
                     OR id = (SELECT f.enquiry_id FROM enquiry_calls f WHERE f.call_sid = $1) \
                     ORDER BY CASE WHEN call_sid = $1 THEN 0 ELSE 1 END LIMIT 1"
                ))
                .bind(call_sid)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| r.open(&self.keys)).transpose()
            }

            async fn list_enquiries(&self) -> Result<Vec<Enquiry>, StoreError> {
                let rows: Vec<EnquiryRow> = sqlx::query_as(&format!(
                    "SELECT {ENQUIRY_COLUMNS} FROM enquiries ORDER BY created_at, reference"
                ))
                .fetch_all(self.reader())
                .await?;
                rows.into_iter().map(|r| r.open(&self.keys)).collect()
            }

            async fn answered_since(&self, since: DateTime<Utc>) -> Result<Vec<i64>, StoreError> {
                let rows = sqlx::query(
                    "SELECT queue_wait_seconds FROM calls WHERE queue_result IN ('bridged', 'redirected') AND queue_left_at >= $1 \
                     AND queue_wait_seconds IS NOT NULL AND simulated = FALSE",
                )
                .bind(since)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        r.try_get::<i64, _>("queue_wait_seconds")
                            .map_err(StoreError::from)
                    })
                    .collect()
            }

            async fn call(&self, call_sid: &str) -> Result<Option<CallRecord>, StoreError> {
                let row: Option<CallRow> = sqlx::query_as(&format!(
                    "SELECT {CALL_COLUMNS} FROM calls WHERE call_sid = $1"
                ))
                .bind(call_sid)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| r.open(&self.keys)).transpose()
            }

            async fn steps(&self, call_sid: &str) -> Result<Vec<StepRecord>, StoreError> {
                let rows: Vec<StepRow> = sqlx::query_as(
                    "SELECT seq, node, input, outcome, path FROM call_steps WHERE call_sid = $1 ORDER BY seq",
                )
                .bind(call_sid)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(StepRecord::try_from).collect()
            }

            async fn add_closure(&self, c: &NewClosure) -> Result<Closure, StoreError> {
                let mut tx = self.pool.begin().await?;
                let row: ClosureRow = sqlx::query_as(
                    "INSERT INTO closures (kind, starts_at, ends_at, reason, created_at) VALUES ($1, $2, $3, $4, $5) \
                     RETURNING id, kind, starts_at, ends_at, reason",
                )
                .bind(c.kind.as_str())
                .bind(c.from)
                .bind(c.until)
                .bind(&c.reason)
                .bind(c.created_at)
                .fetch_one(&mut *tx)
                .await?;
                Self::bump_revision(&mut tx).await?;
                tx.commit().await?;
                Closure::try_from(row)
            }

            async fn list_closures(&self) -> Result<Vec<Closure>, StoreError> {
                let rows: Vec<ClosureRow> = sqlx::query_as(
                    "SELECT id, kind, starts_at, ends_at, reason FROM closures ORDER BY starts_at, id",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(Closure::try_from).collect()
            }

            async fn closures_ending_after(&self, after: DateTime<Utc>) -> Result<Vec<Closure>, StoreError> {
                let rows: Vec<ClosureRow> = sqlx::query_as(
                    "SELECT id, kind, starts_at, ends_at, reason FROM closures WHERE ends_at > $1 ORDER BY starts_at, id",
                )
                .bind(after)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(Closure::try_from).collect()
            }

            async fn remove_closure(&self, id: i64) -> Result<bool, StoreError> {
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query("DELETE FROM closures WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                Self::bump_revision(&mut tx).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn hours_revision(&self) -> Result<i64, StoreError> {
                Ok(
                    sqlx::query_scalar("SELECT revision FROM hours_revision WHERE id = 1")
                        .fetch_one(&self.pool)
                        .await?,
                )
            }

            async fn stored_calendar(&self, division: &str) -> Result<Option<StoredCalendar>, StoreError> {
                let row: Option<CalendarRow> = sqlx::query_as(
                    "SELECT division, document, source, fetched_at, checked_at, etag, last_modified \
                     FROM bank_holiday_calendars WHERE division = $1",
                )
                .bind(division)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(StoredCalendar::from))
            }

            async fn save_calendar(&self, c: &StoredCalendar) -> Result<(), StoreError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query(
                    "INSERT INTO bank_holiday_calendars (division, document, source, fetched_at, checked_at, etag, last_modified) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (division) DO UPDATE SET document = excluded.document, \
                     source = excluded.source, fetched_at = excluded.fetched_at, checked_at = excluded.checked_at, \
                     etag = excluded.etag, last_modified = excluded.last_modified",
                )
                .bind(&c.division)
                .bind(&c.document)
                .bind(&c.source)
                .bind(c.fetched_at)
                .bind(c.checked_at)
                .bind(&c.etag)
                .bind(&c.last_modified)
                .execute(&mut *tx)
                .await?;
                Self::bump_revision(&mut tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn calendar_checked(&self, division: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
                sqlx::query("UPDATE bank_holiday_calendars SET checked_at = $1 WHERE division = $2")
                    .bind(at)
                    .bind(division)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn claim_enquiry(
                &self,
                id: &str,
                handler: &str,
                at: DateTime<Utc>,
                stale_before: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(&format!(
                    "UPDATE enquiries SET claimed_by = $1, claimed_at = $2 WHERE id = $3 AND status IN {OPEN_STATUSES} \
                     AND (claimed_by IS NULL OR claimed_by = $1 OR claimed_at < $4)"
                ))
                .bind(handler)
                .bind(at)
                .bind(id)
                .bind(stale_before)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn claim_next_enquiry(
                &self,
                handler: &str,
                at: DateTime<Utc>,
                stale_before: DateTime<Utc>,
                today: chrono::NaiveDate,
            ) -> Result<Option<Enquiry>, StoreError> {
                let free = "(claimed_by IS NULL OR claimed_at < $3)";
                let row: Option<EnquiryRow> = sqlx::query_as(&format!(
                    "UPDATE enquiries SET claimed_by = $1, claimed_at = $2 WHERE id = (\
                     SELECT id FROM enquiries WHERE status IN {OPEN_STATUSES} AND {free} \
                     AND (next_attempt_on IS NULL OR next_attempt_on <= $4) \
                     ORDER BY COALESCE(waiting_since, created_at), reference LIMIT 1{skip}) AND {free} RETURNING {ENQUIRY_COLUMNS}",
                    skip = $skip_locked
                ))
                .bind(handler)
                .bind(at)
                .bind(stale_before)
                .bind(today)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| r.open(&self.keys)).transpose()
            }

            async fn enquiry_owner(&self, id: &str) -> Result<Option<String>, StoreError> {
                Ok(
                    sqlx::query_scalar("SELECT claimed_by FROM enquiries WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?
                        .flatten(),
                )
            }

            async fn try_lease(
                &self,
                name: &str,
                holder: &str,
                now: DateTime<Utc>,
                until: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "INSERT INTO job_leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
                     WHERE job_leases.expires_at <= $4 OR job_leases.holder = excluded.holder",
                )
                .bind(name)
                .bind(holder)
                .bind(until)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn gauges(&self, now: DateTime<Utc>, today: chrono::NaiveDate) -> Result<super::Gauges, StoreError> {
                let queue_size: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM calls WHERE queue_joined_at IS NOT NULL AND queue_left_at IS NULL \
                     AND ended_at IS NULL AND simulated = FALSE AND queue_joined_at > $1",
                )
                // A call whose end never reached us stops counting after Twilio's 4-hour limit.
                .bind(now - chrono::Duration::hours(4))
                .fetch_one(self.reader())
                .await?;
                let (open, overdue): (i64, i64) = sqlx::query_as(
                    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN callback_due < $1 THEN 1 ELSE 0 END), 0) FROM enquiries WHERE status IN ('new', 'retry', 'follow-up')",
                )
                .bind(today)
                .fetch_one(self.reader())
                .await?;
                Ok(super::Gauges {
                    queue_size,
                    enquiries_open: open,
                    enquiries_overdue: overdue,
                })
            }

            fn pool_stats(&self) -> super::PoolStats {
                super::PoolStats {
                    size: self.pool.size(),
                    idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
                }
            }

            async fn migrations_current(&self) -> Result<bool, StoreError> {
                let applied: Vec<i64> =
                    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                        .fetch_all(&self.pool)
                        .await?;
                Ok(MIGRATOR.iter().all(|m| applied.contains(&m.version)))
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            fn data_keys(&self) -> std::sync::Arc<crate::crypto::Keyring> {
                self.keys.clone()
            }
        }
    };
}

pub(super) use sql_store;
