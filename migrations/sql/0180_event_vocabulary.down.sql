update read_models.audit_log
   set event_type = case event_type
     when 'OriginCreated' then 'OriginAdded'
     when 'OriginDeleted' then 'OriginRemoved'
     when 'UserCreated' then 'UserAdded'
     when 'UserDeleted' then 'UserRemoved'
     when 'CustomDomainCreated' then 'CustomDomainAdded'
     when 'CustomDomainDeleted' then 'CustomDomainRemoved'
   end
 where event_type in
   ('OriginCreated', 'OriginDeleted', 'UserCreated', 'UserDeleted', 'CustomDomainCreated', 'CustomDomainDeleted');
