-- Events and commands share one vocabulary: resources are Created, Updated and Deleted. The event log
-- keeps the names it was written with (every event store reads them under the new ones); the audit
-- log projected before the change gets the new names too, so it reads as a replay would rebuild it.
update read_models.audit_log
   set event_type = case event_type
     when 'OriginAdded' then 'OriginCreated'
     when 'OriginRemoved' then 'OriginDeleted'
     when 'UserAdded' then 'UserCreated'
     when 'UserRemoved' then 'UserDeleted'
     when 'CustomDomainAdded' then 'CustomDomainCreated'
     when 'CustomDomainRemoved' then 'CustomDomainDeleted'
   end
 where event_type in
   ('OriginAdded', 'OriginRemoved', 'UserAdded', 'UserRemoved', 'CustomDomainAdded', 'CustomDomainRemoved');
