-- 1.3.0 adds a nullable column: 1.2.0 keeps running and simply ignores it.
SET lock_timeout = '2s';
ALTER TABLE quiz.quizzes ADD COLUMN difficulty text;
