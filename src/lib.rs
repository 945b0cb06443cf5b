//! rolegate: a reverse-proxy authorization gateway.
//!
//! A request's path through the crate:
//! [`config`] (files to a typed model) -> [`canonical`] (one canonical path) -> [`policy`] (compiled
//! role table, route match, decision) -> `auth` (JWT verification, claims to principal) ->
//! `gateway` (pingora proxy, admin service, metrics) -> `reload` (hot swap).

pub mod auth;
pub mod canonical;
pub mod cli;
pub mod config;
pub mod demo;
pub mod fetch;
pub mod gateway;
pub mod openapi;
pub mod policy;
pub mod reload;
