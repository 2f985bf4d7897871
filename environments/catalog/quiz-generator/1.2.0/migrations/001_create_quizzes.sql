CREATE TABLE IF NOT EXISTS quiz.quizzes (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lesson_id bigint NOT NULL,
    title text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
