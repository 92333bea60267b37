-- SPDX-License-Identifier: Apache-2.0
-- Shop DB (cluster shop-db): database shop for the Shop API, database crm for the CRM API (the
-- plan has no CRM database of its own). Applied once, when the cluster is created.
CREATE ROLE shop LOGIN;
CREATE ROLE crm LOGIN;
CREATE DATABASE shop OWNER shop;
CREATE DATABASE crm OWNER crm;
\connect shop shop
CREATE TABLE products (
  id          serial PRIMARY KEY,
  name        text NOT NULL,
  price_cents integer NOT NULL CHECK (price_cents > 0)
);
INSERT INTO products (name, price_cents)
  SELECT 'product ' || g, 100 + (g * 37) % 900 FROM generate_series(1, 50) AS g;
CREATE TABLE orders (
  id           serial PRIMARY KEY,
  customer_id  integer NOT NULL,
  product_id   integer NOT NULL REFERENCES products (id),
  quantity     integer NOT NULL CHECK (quantity > 0),
  total_cents  integer NOT NULL,
  poison_event boolean NOT NULL DEFAULT false,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_customer ON orders (customer_id);
\connect crm crm
CREATE TABLE customers (
  id    serial PRIMARY KEY,
  name  text NOT NULL,
  email text
);
INSERT INTO customers (name, email)
  SELECT 'customer ' || g, 'c' || g || '@example.test' FROM generate_series(1, 100) AS g;
