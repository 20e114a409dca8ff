package dev.rlsr.engine.io;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;

/**
 * What went wrong with a file, in words a user understands. The JDK's file exceptions often carry only the path as
 * their message ({@code AccessDeniedException: /runs/x}), which reads as if the path were the error; this names the
 * cause ("permission denied") next to the file.
 */
public final class IoMessages {
    private IoMessages() {
    }

    /**
     * The cause and the file of a file-system error.
     *
     * @param e the error
     * @return e.g. {@code "permission denied: /runs/x/config.yaml"}, or the exception's own message for other errors
     */
    public static String describe(IOException e) {
        String reason = switch (e) {
            case AccessDeniedException a -> "permission denied";
            case NoSuchFileException n -> "no such file or directory";
            case FileAlreadyExistsException f -> "already exists";
            case DirectoryNotEmptyException d -> "directory not empty";
            case NotDirectoryException n -> "not a directory";
            case FileSystemException f -> f.getReason();
            default -> null;
        };
        if (e instanceof FileSystemException f) {
            String file = f.getFile() == null ? "" : f.getFile();
            String other = f.getOtherFile() == null ? "" : " -> " + f.getOtherFile();
            String r = reason == null || reason.isBlank() ? (f.getReason() == null ? "error" : f.getReason()) : reason;
            // the JDK's own reason text for some errors is already "Permission denied"
            if (f.getReason() != null && !f.getReason().isBlank() && !f.getReason().equalsIgnoreCase(r)) {
                r = r + " (" + f.getReason() + ")";
            }
            return r + ": " + file + other;
        }
        return e.getMessage() == null ? e.toString() : e.getMessage();
    }
}
