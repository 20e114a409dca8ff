package dev.rlsr.trainer.eval;

import java.util.List;

/**
 * The evaluation's judge: whether a response states an example's checkable answer, independently of the reward and
 * of ROUGE/BLEU (it never looks at the reference response). It is the miniature's stand-in for the paper's
 * LLM judges (AlpacaEval, Arena-Hard): those ask whether an answer is good; on data whose answers can be checked,
 * this asks whether it is right.
 *
 * <p>A data line carries the answer in its {@code "answer"} field: a string, or an array of strings any one of which
 * counts. A response is correct when it contains an answer as whole words: the text matches exactly (case-sensitive;
 * runs of whitespace count as one space on both sides), and where the answer begins or ends with a letter, digit or
 * hyphen, the response has no letter, digit or hyphen right before or after the match (so {@code "is twenty"} is
 * not found in {@code "is twenty-eight"}, nor {@code "71 is larger"} in {@code "171 is larger"}).
 *
 * <p>Write answers that a wrong response cannot contain: where the question itself names the value, include the
 * word that makes it the answer ({@code "is sixteen"} for "Compute sixteen plus zero.", not {@code "sixteen"}). The
 * bundled demo set's answers follow this rule; a response that lists several candidates would still pass, which is
 * the limit of a containment check.
 */
public final class AnswerJudge {
    private AnswerJudge() {
    }

    /**
     * Whether {@code response} contains one of {@code answers} as whole words (see the class comment).
     *
     * @param response the model's response
     * @param answers  the accepted answers (non-empty)
     * @return true when one of them is found
     * @throws IllegalArgumentException when {@code answers} is empty or holds a blank answer
     */
    public static boolean correct(String response, List<String> answers) {
        if (answers.isEmpty()) {
            throw new IllegalArgumentException("the judge needs at least one answer to look for");
        }
        String r = normalise(response);
        for (String a : answers) {
            String n = normalise(a);
            if (n.isEmpty()) {
                throw new IllegalArgumentException("a blank answer cannot be checked");
            }
            if (containsWords(r, n)) {
                return true;
            }
        }
        return false;
    }

    static boolean containsWords(String text, String answer) {
        boolean edgeStart = wordChar(answer.charAt(0));
        boolean edgeEnd = wordChar(answer.charAt(answer.length() - 1));
        for (int from = 0; ; from++) {
            int at = text.indexOf(answer, from);
            if (at < 0) {
                return false;
            }
            int end = at + answer.length();
            boolean startOk = !edgeStart || at == 0 || !wordChar(text.charAt(at - 1));
            boolean endOk = !edgeEnd || end == text.length() || !wordChar(text.charAt(end));
            if (startOk && endOk) {
                return true;
            }
            from = at;
        }
    }

    private static boolean wordChar(char c) {
        return Character.isLetterOrDigit(c) || c == '-';
    }

    /** Strips, and turns every run of whitespace into one space. */
    static String normalise(String s) {
        StringBuilder b = new StringBuilder(s.length());
        boolean space = false;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isWhitespace(c)) {
                space = b.length() > 0;
            } else {
                if (space) {
                    b.append(' ');
                    space = false;
                }
                b.append(c);
            }
        }
        return b.toString();
    }
}
