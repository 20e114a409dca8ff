/**
 * Run configurations: {@link dev.rlsr.trainer.config.ConfigSchema} (every key with type, default, range and meaning),
 * {@link dev.rlsr.trainer.config.RunConfig} (defaults, then one YAML/JSON file, then {@code --set key=value}
 * overrides, each checked key by key), {@link dev.rlsr.trainer.config.TrainerConfigs} (sections to the trainer config
 * records). Errors are {@link dev.rlsr.trainer.config.ConfigException}s that name the key.
 */
package dev.rlsr.trainer.config;
