// Railhead's Pulumi program: read and validate the stack's config, compose the deploy, export
// where it runs. A config problem fails the program with every problem listed and nothing
// registered (loadConfig and planDeploy throw before the first resource).
import * as pulumi from "@pulumi/pulumi";
import { ConfigError } from "./components/config";
import { railhead, type RailheadOutputs } from "./components/program";

function run(): RailheadOutputs {
  try {
    return railhead();
  } catch (e) {
    // RunError: the engine prints the message alone, without a stack trace of ours.
    if (e instanceof ConfigError) throw new pulumi.RunError(e.message);
    throw e;
  }
}

const deployed = run();

export const service = deployed.service;
export const image = deployed.image;
export const version = deployed.version;
export const hosts = deployed.hosts;
export const urls = deployed.urls;
