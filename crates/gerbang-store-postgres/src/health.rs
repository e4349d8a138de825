//! Delivery counts for the health page on PostgreSQL: grouped in the database over the time index.

use chrono::{DateTime, Utc};
use gerbang_store::StoreError;
use gerbang_store::health::{AttemptCount, DailySends, HealthStore, delivery_time_case};

use crate::verifications::ms;
use crate::{PostgresStore, store_error};

impl HealthStore for PostgresStore {
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
        let (channels, rates): (Vec<String>, Vec<f64>) = rates.into_iter().unzip();
        sqlx::query(
            "INSERT INTO drain_rates (instance, channel, per_second, updated_at) \
             SELECT $1, channel, per_second, $4 FROM UNNEST($2::TEXT[], $3::DOUBLE PRECISION[]) \
             AS r(channel, per_second) \
             ON CONFLICT (instance, channel) DO UPDATE SET \
             per_second = EXCLUDED.per_second, updated_at = EXCLUDED.updated_at",
        )
        .bind(instance.as_str())
        .bind(channels)
        .bind(rates)
        .bind(ms(at))
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn drain_rates(&self, since: DateTime<Utc>) -> Result<Vec<(String, f64)>, StoreError> {
        let rows: Vec<(String, f64)> = sqlx::query_as(
            "SELECT channel, CAST(SUM(per_second) AS DOUBLE PRECISION) FROM drain_rates \
             WHERE updated_at >= $1 GROUP BY channel ORDER BY channel",
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
        let mut days = Vec::new();
        let mut channels = Vec::new();
        let mut providers = Vec::new();
        let mut sent = Vec::new();
        for s in sends {
            days.push(s.day);
            channels.push(s.channel);
            providers.push(s.provider);
            sent.push(i64::try_from(s.sent).unwrap_or(i64::MAX));
        }
        sqlx::query(
            "INSERT INTO daily_sends (day, channel, provider, sent) \
             SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[]) \
             ON CONFLICT (day, channel, provider) DO UPDATE SET sent = daily_sends.sent + EXCLUDED.sent",
        )
        .bind(days)
        .bind(channels)
        .bind(providers)
        .bind(sent)
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn daily_sends(&self, day: String) -> Result<Vec<DailySends>, StoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT channel, provider, sent FROM daily_sends WHERE day = $1 ORDER BY channel, provider",
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
            "SELECT (attempted_at - $1) / $2 AS bucket, channel, provider, status, COUNT(*) \
             FROM delivery_attempts WHERE attempted_at >= $1 \
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
             WHERE attempted_at >= $1 AND operator IS NOT NULL GROUP BY operator, status \
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
             WHERE attempted_at >= $1 AND status = 'delivered' GROUP BY bucket ORDER BY bucket",
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
