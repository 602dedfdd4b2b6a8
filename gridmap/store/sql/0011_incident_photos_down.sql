-- the files stay in the photo folder: delete it by hand once they are no longer wanted
DROP TABLE IF EXISTS incident_photo;
