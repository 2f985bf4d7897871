-- 1.3.0 adds a nullable column: 1.2.0 keeps running and simply ignores it.
SET lock_timeout = '2s';
SET statement_timeout = '30s';
ALTER TABLE quiz.quizzes ADD COLUMN IF NOT EXISTS difficulty text;
