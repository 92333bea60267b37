-- SPDX-License-Identifier: Apache-2.0
-- MES DB (cluster mes-db): production jobs written by the MES worker. Applied once.
CREATE ROLE mes LOGIN;
CREATE DATABASE mes OWNER mes;
\connect mes mes
CREATE TABLE jobs (
  id         serial PRIMARY KEY,
  order_id   integer NOT NULL UNIQUE,
  product_id integer NOT NULL,
  quantity   integer NOT NULL,
  status     text NOT NULL DEFAULT 'queued',
  created_at timestamptz NOT NULL DEFAULT now()
);
