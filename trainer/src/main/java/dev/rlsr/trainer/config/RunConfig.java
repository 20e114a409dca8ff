package dev.rlsr.trainer.config;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLGenerator;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import dev.rlsr.trainer.reward.RewardSpec;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * One run's configuration: the defaults of {@link ConfigSchema}, then a config file (YAML or JSON), then
 * command-line overrides ({@code rl.steps=50}), each layer checked key by key. Immutable; every {@code with...}
 * returns a new config. An unknown key or a bad value raises a {@link ConfigException} that names the key, the value
 * and where it came from.
 *
 * <p>The file mirrors the dotted keys as nested sections:
 * <pre>{@code
 * model: {path: models/qwen3-0.6b}
 * data:  {train: data/train.jsonl}
 * rl:    {steps: 200, group_size: 8, reward: cosine, sampling: {temperature: 1.0}}
 * }</pre>
 */
public final class RunConfig {

    private static final ObjectMapper YAML = YAMLMapper.builder(YAMLFactory.builder()
                    .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build())
            .disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER)
            .enable(YAMLGenerator.Feature.MINIMIZE_QUOTES)
            .build();
    private static final ObjectMapper JSON = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .enable(SerializationFeature.INDENT_OUTPUT)
            .build();

    private final ObjectNode tree;

    private RunConfig(ObjectNode tree) {
        this.tree = tree;
    }

    /** Every key at its default. */
    public static RunConfig defaults() {
        return new RunConfig(ConfigSchema.defaults());
    }

    /** Defaults, then {@code file} (YAML, or JSON for a {@code .json} name; null for none), then the overrides. */
    public static RunConfig load(Path file, List<String> overrides) {
        RunConfig c = defaults();
        if (file != null) {
            c = c.withFile(file);
        }
        return c.withOverrides(overrides == null ? List.of() : overrides);
    }

    /** This config with the keys of a YAML/JSON file laid over it. */
    public RunConfig withFile(Path file) {
        String name = file.toString();
        String text;
        try {
            text = Files.readString(file);
        } catch (NoSuchFileException e) {
            throw new ConfigException(null, "config file " + name + " does not exist");
        } catch (AccessDeniedException e) {
            throw new ConfigException(null, "cannot read config file " + name + ": permission denied");
        } catch (IOException e) {
            throw new ConfigException(null, "cannot read config file " + name + ": "
                    + dev.rlsr.engine.io.IoMessages.describe(e), e);
        }
        return withText(text, name, name.toLowerCase().endsWith(".json"));
    }

    /** This config with a class path resource (YAML) laid over it, e.g. the demo's defaults. */
    public RunConfig withResource(String resource) {
        try (InputStream in = RunConfig.class.getClassLoader().getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("resource " + resource + " is missing from the class path");
            }
            return withText(new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8), resource, false);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read resource " + resource, e);
        }
    }

    /** This config with YAML or JSON text laid over it; {@code source} names it in errors. */
    public RunConfig withText(String text, String source, boolean json) {
        JsonNode node;
        try {
            if (json) {
                node = JSON.readTree(text);
            } else {
                // a second document (after "---") would otherwise be dropped without a word
                List<JsonNode> docs;
                try (MappingIterator<JsonNode> it = YAML.readerFor(JsonNode.class).readValues(text)) {
                    docs = it.readAll();
                }
                docs.removeIf(d -> d == null || d.isNull() || d.isMissingNode());
                if (docs.size() > 1) {
                    throw new ConfigException(null, "config file " + source + " holds " + docs.size() + " YAML"
                            + " documents (separated by ---); only one is read, so put every section into a single"
                            + " document");
                }
                node = docs.isEmpty() ? null : docs.getFirst();
            }
        } catch (JsonProcessingException e) {
            String where = e.getLocation() == null ? ""
                    : " at line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr();
            throw new ConfigException(null, "config file " + source + " is not valid " + (json ? "JSON" : "YAML")
                    + where + ": " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new ConfigException(null, "cannot read config file " + source + ": " + e.getMessage(), e);
        }
        if (node == null || node.isMissingNode() || node.isNull()) {
            return this; // an empty file changes nothing
        }
        if (!node.isObject()) {
            throw new ConfigException(null, "config file " + source + " must be a mapping of sections ("
                    + String.join(", ", ConfigSchema.children("")) + "), not a " + node.getNodeType()
                    .toString().toLowerCase());
        }
        ObjectNode copy = tree.deepCopy();
        merge(copy, (ObjectNode) node, "", source);
        return new RunConfig(copy);
    }

    private static void merge(ObjectNode into, ObjectNode from, String prefix, String source) {
        for (Map.Entry<String, JsonNode> e : from.properties()) {
            String path = prefix.isEmpty() ? e.getKey() : prefix + "." + e.getKey();
            JsonNode v = e.getValue();
            ConfigSchema.Key k = ConfigSchema.key(path);
            if (k != null) {
                into.set(e.getKey(), ConfigSchema.coerce(k, v, source));
            } else if (ConfigSchema.isSection(path)) {
                if (v == null || v.isNull()) {
                    continue; // "rl:" with nothing under it
                }
                if (!v.isObject()) {
                    throw new ConfigException(path, "is a section (keys: " + String.join(", ",
                            ConfigSchema.children(path)) + "), not a value; got " + v + " (from " + source + ")");
                }
                merge((ObjectNode) into.get(e.getKey()), (ObjectNode) v, path, source);
            } else {
                throw unknown(path, source);
            }
        }
    }

    private static ConfigException unknown(String path, String source) {
        String section = path.contains(".") ? path.substring(0, path.lastIndexOf('.')) : "";
        while (!section.isEmpty() && !ConfigSchema.isSection(section)) {
            section = section.contains(".") ? section.substring(0, section.lastIndexOf('.')) : "";
        }
        String hint = ConfigSchema.suggest(path);
        StringBuilder m = new StringBuilder("unknown key '" + path + "' (from " + source + ")");
        if (hint != null) {
            m.append("; did you mean '").append(hint).append("'?");
        }
        m.append(section.isEmpty() ? " Sections: " : " Keys of '" + section + "': ")
                .append(String.join(", ", ConfigSchema.children(section)));
        return new ConfigException(path, m.toString());
    }

    /**
     * This config with {@code key=value} overrides, e.g. {@code rl.steps=50}, {@code rl.reward=0.7*cosine+0.3*rougeL},
     * {@code rl.sampling.stop_strings=[".", "!"]}. The value is read as YAML, so lists and maps work.
     */
    public RunConfig withOverrides(List<String> overrides) {
        RunConfig c = this;
        for (String o : overrides) {
            int eq = o.indexOf('=');
            if (eq <= 0) {
                throw new ConfigException(null, "override '" + o + "' is not of the form key=value (e.g. rl.steps=50)");
            }
            c = c.with(o.substring(0, eq).trim(), o.substring(eq + 1), "--set " + o);
        }
        return c;
    }

    /** This config with one key set from text (read as YAML: {@code 50}, {@code true}, {@code [a, b]}). */
    public RunConfig with(String key, String valueText, String source) {
        ConfigSchema.Key k = ConfigSchema.key(key);
        if (k == null) {
            if (ConfigSchema.isSection(key)) {
                throw new ConfigException(key, "is a section, not a key; set one of its keys: "
                        + String.join(", ", ConfigSchema.children(key).stream().map(c -> key + "." + c).toList()));
            }
            throw unknown(key, source);
        }
        JsonNode v;
        if (k.kind() == ConfigSchema.Kind.STRING) {
            v = JSON.getNodeFactory().textNode(valueText); // paths and separators stay as typed
        } else {
            try {
                v = valueText.isBlank() ? JSON.getNodeFactory().textNode("") : YAML.readTree(valueText);
            } catch (JsonProcessingException e) {
                v = JSON.getNodeFactory().textNode(valueText);
            }
            if (v == null || v.isNull() || v.isMissingNode()) {
                v = JSON.getNodeFactory().textNode(valueText);
            }
        }
        return with(key, v, source);
    }

    /** This config with one key set to a JSON value. */
    public RunConfig with(String key, JsonNode value, String source) {
        ConfigSchema.Key k = ConfigSchema.key(key);
        if (k == null) {
            throw unknown(key, source);
        }
        ObjectNode copy = tree.deepCopy();
        ObjectNode n = copy;
        String[] parts = key.split("\\.");
        for (int i = 0; i < parts.length - 1; i++) {
            n = (ObjectNode) n.get(parts[i]);
        }
        n.set(parts[parts.length - 1], ConfigSchema.coerce(k, value, source));
        return new RunConfig(copy);
    }

    // ------------------------------------------------------------------ typed access

    public JsonNode node(String key) {
        if (ConfigSchema.key(key) == null) {
            throw new IllegalArgumentException("no config key '" + key + "' in the schema");
        }
        JsonNode n = tree;
        for (String p : key.split("\\.")) {
            n = n.get(p);
        }
        return n;
    }

    public int getInt(String key) {
        return node(key).intValue();
    }

    public long getLong(String key) {
        return node(key).longValue();
    }

    public double getDouble(String key) {
        return node(key).doubleValue();
    }

    public boolean getBool(String key) {
        return node(key).booleanValue();
    }

    public String getString(String key) {
        return node(key).asText();
    }

    public List<String> getStringList(String key) {
        List<String> out = new ArrayList<>();
        node(key).forEach(n -> out.add(n.asText()));
        return out;
    }

    public RewardSpec getReward(String key) {
        return ConfigSchema.parseReward(node(key));
    }

    /** The whole tree (a copy). */
    public ObjectNode tree() {
        return tree.deepCopy();
    }

    /** The resolved config as YAML (every key, defaults included): what a run directory keeps as config.yaml. */
    public String toYaml() {
        try {
            return YAML.writeValueAsString(tree);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    public String toJson() {
        try {
            return JSON.writeValueAsString(tree);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RunConfig r && r.tree.equals(tree);
    }

    @Override
    public int hashCode() {
        return tree.hashCode();
    }

    @Override
    public String toString() {
        return toYaml();
    }
}
