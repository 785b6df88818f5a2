"""Input and output: device-data CSV files (:mod:`.data`), datasets (:mod:`.datasets`), strict
YAML specs (:mod:`.schema`), atomic result files and hashes (:mod:`.storage`), and paths as
outputs record them (:mod:`.paths`)."""
