//! Delivery counts for the health page on SQLite: grouped in the database over the time index.

use chrono::{DateTime, Utc};
use gerbang_store::StoreError;
use gerbang_store::health::{AttemptCount, DailySends, HealthStore, delivery_time_case};

use crate::verifications::ms;
use crate::{SqliteStore, store_error};

impl HealthStore for SqliteStore {
    async fn waiting_codes(&self) -> Result<Vec<(String, u64)>, StoreError> {
        // Priority 0: codes; the partial index `outbox_waiting` holds only waiting messages.
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT channel, COUNT(*) FROM outbox \
             WHERE status IN ('queued', 'claimed') AND priority = 0 GROUP BY channel",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|(channel, count)| (channel, count.max(0) as u64))
            .collect())
    }

    async fn report_drain_rates(
        &self,
        instance: String,
        rates: Vec<(String, f64)>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if rates.is_empty() {
            return Ok(());
        }
        self.writer
            .raw(move |connection| {
                Box::pin(async move {
                    for (channel, per_second) in rates {
                        sqlx::query(
                            "INSERT INTO drain_rates (instance, channel, per_second, updated_at) \
                             VALUES (?, ?, ?, ?) ON CONFLICT (instance, channel) DO UPDATE SET \
                             per_second = excluded.per_second, updated_at = excluded.updated_at",
                        )
                        .bind(instance.as_str())
                        .bind(channel.as_str())
                        .bind(per_second)
                        .bind(ms(at))
                        .execute(&mut *connection)
                        .await
                        .map_err(store_error)?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn drain_rates(&self, since: DateTime<Utc>) -> Result<Vec<(String, f64)>, StoreError> {
        let rows: Vec<(String, f64)> = sqlx::query_as(
            "SELECT channel, CAST(SUM(per_second) AS DOUBLE PRECISION) FROM drain_rates \
             WHERE updated_at >= ? GROUP BY channel ORDER BY channel",
        )
        .bind(ms(since))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(rows)
    }

    async fn add_daily_sends(&self, sends: Vec<DailySends>) -> Result<(), StoreError> {
        if sends.is_empty() {
            return Ok(());
        }
        self.writer
            .raw(move |connection| {
                Box::pin(async move {
                    for s in sends {
                        sqlx::query(
                            "INSERT INTO daily_sends (day, channel, provider, sent) VALUES (?, ?, ?, ?) \
                             ON CONFLICT (day, channel, provider) DO UPDATE SET sent = daily_sends.sent + excluded.sent",
                        )
                        .bind(s.day.as_str())
                        .bind(s.channel.as_str())
                        .bind(s.provider.as_str())
                        .bind(i64::try_from(s.sent).unwrap_or(i64::MAX))
                        .execute(&mut *connection)
                        .await
                        .map_err(store_error)?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn daily_sends(&self, day: String) -> Result<Vec<DailySends>, StoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT channel, provider, sent FROM daily_sends WHERE day = ? ORDER BY channel, provider",
        )
        .bind(day.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|(channel, provider, sent)| DailySends {
                day: day.clone(),
                channel,
                provider,
                sent: sent.max(0) as u64,
            })
            .collect())
    }

    async fn attempt_counts(
        &self,
        since: DateTime<Utc>,
        bucket_seconds: i64,
    ) -> Result<Vec<AttemptCount>, StoreError> {
        let since = ms(since);
        let width = bucket_seconds.max(1) * 1000;
        let rows: Vec<(i64, String, String, String, i64)> = sqlx::query_as(
            "SELECT (attempted_at - ?1) / ?2 AS bucket, channel, provider, status, COUNT(*) \
             FROM delivery_attempts WHERE attempted_at >= ?1 \
             GROUP BY bucket, channel, provider, status ORDER BY bucket",
        )
        .bind(since)
        .bind(width)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|(bucket, channel, provider, status, count)| AttemptCount {
                bucket,
                channel,
                provider,
                status,
                count: count.max(0) as u64,
            })
            .collect())
    }

    async fn operator_counts(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, String, u64)>, StoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT operator, status, COUNT(*) FROM delivery_attempts \
             WHERE attempted_at >= ? AND operator IS NOT NULL GROUP BY operator, status \
             ORDER BY operator, status",
        )
        .bind(ms(since))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|(operator, status, count)| (operator, status, count.max(0) as u64))
            .collect())
    }

    async fn delivery_times(&self, since: DateTime<Utc>) -> Result<Vec<(i64, u64)>, StoreError> {
        let sql = format!(
            "SELECT {} AS bucket, COUNT(*) FROM delivery_attempts \
             WHERE attempted_at >= ? AND status = 'delivered' GROUP BY bucket ORDER BY bucket",
            delivery_time_case("(updated_at - attempted_at)")
        );
        let rows: Vec<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(ms(since))
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|(bucket, count)| (bucket, count.max(0) as u64))
            .collect())
    }
}
