package dev.rlsr.trainer.reward;

import java.util.regex.Pattern;

/**
 * sacreBLEU's default {@code 13a} tokenizer (mteval-v13a.pl, as in sacrebleu/tokenizers/tokenizer_13a.py and
 * tokenizer_re.py of sacreBLEU 2.x), reproduced step by step:
 * <ol>
 *   <li>remove {@code <skipped>}; join {@code "-\n"} line breaks; newlines to spaces; unescape
 *       {@code &quot; &amp; &lt; &gt;} (in that order);</li>
 *   <li>pad with one space on each side, then four regex substitutions (Python {@code re.sub}, which like
 *       Java's {@code replaceAll} scans left to right without overlapping matches):
 *       ASCII symbols {@code {|}~ [\]^_` space!"#$%& ()*+ :;<=>?@ /} get spaces around them;
 *       {@code .} and {@code ,} are split off unless preceded by a digit, then unless followed by a digit;
 *       {@code -} is split off after a digit;</li>
 *   <li>Python {@code ' '.join(line.split())}: single spaces, no ends (Python's whitespace set).</li>
 * </ol>
 * Case is kept (sentence BLEU is case-sensitive by default).
 */
public final class Tokenizer13a {
    private Tokenizer13a() {
    }

    // [\{-\~\[-\` -\&\(-\+\:-\@\/] from tokenizer_re.py, written as explicit code point ranges
    private static final Pattern SYMBOLS = Pattern.compile("([\\x7B-\\x7E\\x5B-\\x60\\x20-\\x26\\x28-\\x2B\\x3A-\\x40\\x2F])");
    private static final Pattern PERIOD_COMMA_AFTER_NON_DIGIT = Pattern.compile("([^0-9])([.,])");
    private static final Pattern PERIOD_COMMA_BEFORE_NON_DIGIT = Pattern.compile("([.,])([^0-9])");
    private static final Pattern DASH_AFTER_DIGIT = Pattern.compile("([0-9])(-)");

    /** Tokenized line: tokens separated by single spaces. */
    public static String tokenize(String line) {
        line = line.replace("<skipped>", "");
        line = line.replace("-\n", "");
        line = line.replace("\n", " ");
        if (line.indexOf('&') >= 0) {
            line = line.replace("&quot;", "\"");
            line = line.replace("&amp;", "&");
            line = line.replace("&lt;", "<");
            line = line.replace("&gt;", ">");
        }
        line = " " + line + " ";
        line = SYMBOLS.matcher(line).replaceAll(" $1 ");
        line = PERIOD_COMMA_AFTER_NON_DIGIT.matcher(line).replaceAll("$1 $2 ");
        line = PERIOD_COMMA_BEFORE_NON_DIGIT.matcher(line).replaceAll(" $1 $2");
        line = DASH_AFTER_DIGIT.matcher(line).replaceAll("$1 $2 ");
        return String.join(" ", PyStrings.split(line));
    }
}
