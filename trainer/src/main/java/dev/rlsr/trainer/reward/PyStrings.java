package dev.rlsr.trainer.reward;

import java.util.ArrayList;
import java.util.List;

/**
 * Python {@code str.split()} / {@code str.rstrip()} semantics, which sacreBLEU relies on: Java's
 * {@code \s} and {@link Character#isWhitespace} disagree with Python's {@code str.isspace()} on several
 * code points (U+00A0, U+0085, U+202F, U+2007, U+001C..U+001F), so BLEU token counts would differ.
 */
final class PyStrings {
    private PyStrings() {
    }

    /** Python 3 {@code str.isspace()} for one code point (bidi class WS/B/S or category Zs). */
    static boolean isPySpace(int cp) {
        return switch (cp) {
            case 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x85, 0xA0, 0x1680,
                 0x2028, 0x2029, 0x202F, 0x205F, 0x3000 -> true;
            default -> cp >= 0x2000 && cp <= 0x200A;
        };
    }

    /** Python {@code s.split()}: runs of whitespace separate tokens; no empty tokens. */
    static List<String> split(String s) {
        List<String> out = new ArrayList<>();
        int n = s.length();
        int i = 0;
        while (i < n) {
            while (i < n && isPySpace(s.codePointAt(i))) {
                i += Character.charCount(s.codePointAt(i));
            }
            int start = i;
            while (i < n && !isPySpace(s.codePointAt(i))) {
                i += Character.charCount(s.codePointAt(i));
            }
            if (i > start) {
                out.add(s.substring(start, i));
            }
        }
        return out;
    }

    /** Python {@code s.rstrip()}. */
    static String rstrip(String s) {
        int end = s.length();
        while (end > 0) {
            int cp = s.codePointBefore(end);
            if (!isPySpace(cp)) {
                break;
            }
            end -= Character.charCount(cp);
        }
        return s.substring(0, end);
    }

    /** True when Python's {@code s.strip()} would be empty. */
    static boolean isBlank(String s) {
        return split(s).isEmpty();
    }
}
