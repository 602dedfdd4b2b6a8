-- After a counties import: the households in no county so far (partition 000000) whose point
-- an imported county now holds, with that county (gridmap_county_of: the lowest code on a
-- shared edge). Only the 000000 partition is read.
CREATE TEMP TABLE gm_rehome ON COMMIT DROP AS
SELECT id, gridmap_county_of(geom) AS county_code FROM household WHERE county_code = '000000';
DELETE FROM gm_rehome WHERE county_code = '000000';
